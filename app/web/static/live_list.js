// The newest page of /tasks keeps itself current: it polls GET /api/tasks with the page's own filters
// every POLL_MS, adds new tasks at the top and redraws only the cells that changed (a focused link
// stays focused). Polling, not a stream: a stream holds a web thread per viewer (README "Live streams").
// It pauses while the tab is hidden and backs off while the server cannot answer, saying so in a banner.
// Every value is written with textContent: a task's arguments are the sender's text, never markup.
(function () {
  "use strict";
  var holder = document.querySelector("[data-live-url]");
  if (!holder || !window.fetch) return;
  var POLL_MS = 2000;
  var MAX_RETRY_MS = 30000;
  var COLUMNS = ["Task", "State", "Progress", "Arguments", "Runtime", "Age", "Queue", "Worker", "Retries"];
  // The server writes the page's filters into it, its time range as the API reads it (epoch seconds)
  var apiUrl = holder.dataset.liveUrl;
  var timer = null;
  var failures = 0;

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text != null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // As Jinja's truncate(40, true, "…") on the server, with its default leeway of 5.
  function truncate(text) {
    var chars = Array.from(text);
    return chars.length <= 45 ? text : chars.slice(0, 39).join("") + "…";
  }

  function taskCell(task) {
    var link = el("a");
    link.href = holder.dataset.pageUrl + "/" + encodeURIComponent(task.id);
    link.append(el("code", task.id.slice(0, 8)));
    var td = el("td");
    td.append(link, " ", el("span", task.kind || "–", "task-name"));
    return td;
  }

  function stateCell(task) {
    var td = el("td");
    var label = task.state + (task.state === "REVOKED" ? " (cancelled)" : "");
    td.append(el("span", label, "state state-" + task.state.toLowerCase()));
    return td;
  }

  function progressCell(task) {
    var percent = task.progress && task.progress.percent;
    if (percent == null) return el("td", "–");
    var bar = el("progress", percent + " %");
    bar.max = 100;
    bar.value = percent;
    bar.setAttribute("aria-label", "Progress of " + task.id.slice(0, 8));
    var td = el("td");
    td.append(bar);
    return td;
  }

  function argumentsCell(task) {
    var td = el("td", task.arguments ? truncate(task.arguments) : "–", "arguments");
    td.title = task.arguments || "";
    return td;
  }

  function ageCell(task) {
    var at = el("time", task.created_at);
    at.setAttribute("datetime", task.created_at);
    at.title = task.created_at;
    if (window.showTime) window.showTime(at, task.created_at);
    var td = el("td");
    td.append(at);
    return td;
  }

  function cells(task) {
    var runtime = task.runtime == null ? "–" : task.runtime.toFixed(2) + " s";
    var all = [taskCell(task), stateCell(task), progressCell(task), argumentsCell(task), el("td", runtime),
               ageCell(task), el("td", task.queue || "–"), el("td", task.worker || "–"), el("td", task.retries)];
    all.forEach(function (td, i) { td.dataset.label = COLUMNS[i]; });
    return all;
  }

  // What a cell shows, to compare the server's cells with fresh ones: an age by its time, not its words.
  function shown(td) {
    var time = td.querySelector("time");
    var bar = td.querySelector("progress");
    return (time ? time.getAttribute("datetime") : td.textContent.replace(/\s+/g, " ").trim())
      + (bar ? "|" + bar.value : "") + "|" + (td.title || "");
  }

  function update(tr, task) {
    cells(task).forEach(function (fresh, i) {
      var old = tr.cells[i];
      if (!old) tr.append(fresh);
      else if (shown(old) !== shown(fresh)) tr.replaceChild(fresh, old);
    });
  }

  function newRow(task) {
    var tr = el("tr", null, "fresh");
    tr.dataset.taskId = task.id;
    tr.append.apply(tr, cells(task));
    return tr;
  }

  function table() {
    var existing = document.getElementById("tasks");
    if (existing) return existing;
    // The page loaded with no task: draw the table the server would have drawn.
    var head = el("tr");
    COLUMNS.forEach(function (name) { var th = el("th", name); th.scope = "col"; head.append(th); });
    var created = el("table");
    created.id = "tasks";
    created.createTHead().append(head);
    created.append(el("tbody"));
    var wrap = el("div", null, "table-wrap");
    wrap.append(created);
    document.querySelector(".pager").before(wrap);
    return created;
  }

  function emptyHint(visible) {
    var hint = document.querySelector("[data-empty-hint]");
    if (!hint && visible) {
      hint = el("p", "No tasks.", "hint");
      hint.setAttribute("data-empty-hint", "");
      document.querySelector(".pager").before(hint);
    }
    if (hint) hint.hidden = !visible;
    var wrap = document.getElementById("tasks");
    if (wrap) wrap.closest(".table-wrap").hidden = visible;
  }

  function draw(tasks) {
    emptyHint(tasks.length === 0);
    if (!tasks.length) return;
    var body = table().tBodies[0];
    var rows = {};
    Array.from(body.rows).forEach(function (tr) { rows[tr.dataset.taskId] = tr; });
    tasks.forEach(function (task, i) {
      var tr = rows[task.id];
      delete rows[task.id];
      if (tr) update(tr, task);
      else tr = newRow(task);
      if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
    });
    Object.keys(rows).forEach(function (id) { rows[id].remove(); });  // pushed off this page, or filtered out
  }

  // The Older link follows the page: new tasks at the top push older ones onto the next page.
  function older(next) {
    var link = document.querySelector(".pager a[rel=next]");
    if (!next) { if (link) link.remove(); return; }
    if (!link) {
      link = el("a", "Older");
      link.rel = "next";
      document.querySelector(".pager").append(link);
    }
    var params = new URLSearchParams(window.location.search);
    params.delete("after");
    params.set("cursor", next);
    link.href = window.location.pathname + "?" + params.toString();
  }

  var banner = el("p", null, "banner");
  banner.setAttribute("role", "status");
  banner.hidden = true;
  holder.after(banner);
  var note = el("span", " This list updates itself every " + POLL_MS / 1000 + " s.");
  note.id = "live-note";
  holder.append(note);

  function lost(delay) {
    banner.textContent = "Lost contact with the server: the list cannot be read just now. "
      + "This page tries again by itself in " + Math.max(1, Math.round(delay / 1000)) + " s.";
    banner.hidden = false;
    note.hidden = true;
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = document.visibilityState === "hidden" ? null : setTimeout(poll, delay);
  }

  function retryLater() {
    failures += 1;
    var delay = Math.min(POLL_MS * Math.pow(2, failures), MAX_RETRY_MS);
    lost(delay);
    schedule(delay);
  }

  function poll() {
    timer = null;
    fetch(apiUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status >= 500) return "outage";  // 503: Redis unreachable; 502/504: a proxy's
        return response.ok ? response.json() : null;  // a 4xx will not mend by asking again: stop
      })
      .then(function (answer) {
        if (answer === "outage") return retryLater();
        if (!answer) return;
        failures = 0;
        banner.hidden = true;
        note.hidden = false;
        draw(answer.tasks);
        older(answer.next);
        schedule(POLL_MS);
      })
      .catch(retryLater);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { clearTimeout(timer); timer = null; }
    else if (!timer) poll();
  });
  schedule(POLL_MS);
})();
