// Keeps a task page's timeline current: when progress.js sees the task reach a new stage (started,
// retried, ended) it fires "task-stage", and the timeline is read again from /api/tasks/<id>/timeline.
// Written with textContent only: a retry's reason is the task's own text and must not become markup.
(function () {
  "use strict";
  var root = document.getElementById("task");
  var list = document.getElementById("timeline");
  if (!root || !list || !root.dataset.timelineUrl) return;
  var RETRY_MS = 5000;
  var latest = 0;  // answers can cross: only the last request's answer is drawn

  function line(event) {
    var item = document.createElement("li");
    var what = document.createElement("span");
    what.className = "what";
    what.textContent = event.what;
    var at = document.createElement("time");
    at.setAttribute("datetime", event.at);
    at.textContent = event.at;
    item.append(what, " ", at);
    if (window.showTime) window.showTime(at, event.at);
    if (event.detail) {
      var detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = event.detail;
      item.append(" ", detail);
    }
    return item;
  }

  function draw(events) {
    if (!events.length) {
      var none = document.createElement("li");
      none.textContent = "Nothing recorded yet.";
      list.replaceChildren(none);
      return;
    }
    list.replaceChildren.apply(list, events.map(line));
  }

  function refresh() {
    var asked = ++latest;
    fetch(root.dataset.timelineUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        // A server error (Redis away, a restart) is lost contact too; a 404 is an answer.
        if (response.status >= 500) throw new Error("HTTP " + response.status);
        return response.ok ? response.json() : null;
      })
      .then(function (answer) { if (answer && asked === latest) draw(answer.events); })
      .catch(function () {
        // Contact lost (the status's banner says so): try again until the timeline is read.
        if (asked === latest) setTimeout(refresh, RETRY_MS);
      });
  }

  root.addEventListener("task-stage", refresh);
})();
