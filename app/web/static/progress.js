// Follows a task on its page: Server-Sent Events from /api/tasks/<id>/events, polling as the fallback.
// Everything is written with textContent, never innerHTML, so a task's data cannot inject markup.
(function () {
  "use strict";
  var root = document.getElementById("task");
  if (!root) return;
  var FINISHED = ["SUCCESS", "FAILURE", "REVOKED"];
  var RETRYABLE = ["FAILURE", "REVOKED"];
  var POLL_MS = 1000;
  var MAX_RETRY_MS = 10000;
  var byId = function (id) { return document.getElementById(id); };
  var show = function (el, visible) { if (el) el.hidden = !visible; };
  var text = function (id, value) { var el = byId(id); if (el) el.textContent = value == null ? "" : String(value); };

  // A time: readable through times.js when it is loaded, else as the API wrote it.
  function time(id, iso) {
    if (window.showTime) window.showTime(byId(id), iso);
    else text(id, iso || "–");
  }

  // The outage banner: shown while the status cannot be read, with when the page tries again.
  function lost(retryMs) {
    show(byId("outage"), true);
    text("outage-retry", Math.max(1, Math.round(retryMs / 1000)));
    show(byId("live-hint"), false);
  }

  function render(status) {
    show(byId("outage"), false);
    var state = status.state;
    // The page keeps "" for "not started" where the API says null: compared as they are, every poll
    // before the start would look like a new stage and read the timeline again.
    if (state !== root.dataset.state || (status.started_at || "") !== (root.dataset.startedAt || "")) {
      // A new stage (started, retried, ended): timeline.js reads the timeline again.
      root.dispatchEvent(new CustomEvent("task-stage", { detail: status }));
    }
    root.dataset.state = state;
    root.dataset.startedAt = status.started_at || "";
    var stateEl = byId("state");
    stateEl.textContent = state;
    stateEl.className = "state state-" + state.toLowerCase();

    var progress = status.progress;
    show(byId("progress-block"), !!progress);
    if (progress && progress.percent != null) {
      var bar = byId("progress");
      bar.value = progress.percent;
      bar.textContent = progress.percent + " %";
      text("percent", progress.percent);
      text("steps", progress.total ? " · step " + progress.current + " of " + progress.total : "");
    }
    time("created-at", status.created_at);
    time("started-at", status.started_at);
    time("finished-at", status.finished_at);
    text("worker", status.worker || "");
    text("last_heartbeat", status.last_heartbeat || "");
    document.querySelectorAll(".worker").forEach(function (el) { el.hidden = !status.worker; });
    text("redelivered", status.redelivered + " × (its worker died)");
    document.querySelectorAll(".redelivered").forEach(function (el) { el.hidden = !status.redelivered; });

    show(byId("result-block"), state === "SUCCESS");
    if (state === "SUCCESS") text("result", JSON.stringify(status.result, null, 2));
    var failing = state === "FAILURE" || state === "RETRY";
    show(byId("error-block"), failing && !!status.error);
    if (status.error && failing) {
      text("error-title", state === "RETRY" ? "Error, will retry" : "Error");
      text("error-type", status.error.type);
      text("error-message", status.error.message);
      text("traceback", status.error.traceback || "");
      show(byId("traceback-block"), !!status.error.traceback);
    }
    show(byId("cancelled"), state === "REVOKED");
    var finished = FINISHED.indexOf(state) >= 0;
    show(byId("cancel-form"), !finished);
    show(byId("retry-form"), RETRYABLE.indexOf(state) >= 0);
    show(byId("live-hint"), !finished);
    return finished;
  }

  var pollTimer = null;
  var failures = 0;
  function retryLater() {
    // Every second while all is well; after failures 2, 4, 8 s up to MAX_RETRY_MS, said in the banner.
    failures += 1;
    var delay = Math.min(POLL_MS * Math.pow(2, failures), MAX_RETRY_MS);
    lost(delay);
    pollTimer = setTimeout(poll, delay);
  }
  function poll() {
    fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status >= 500) return "outage";  // 503: Redis unreachable; 502/504: a proxy's
        return response.ok ? response.json() : null;
      })
      .then(function (status) {
        if (status === "outage") return retryLater();
        failures = 0;
        show(byId("outage"), false);
        if (!(status && render(status))) pollTimer = setTimeout(poll, POLL_MS);
      })
      .catch(retryLater);
  }

  function listen() {
    if (!window.EventSource) return poll();
    var source = new EventSource(root.dataset.eventsUrl);
    var streamFailures = 0;
    source.addEventListener("status", function (event) {
      streamFailures = 0;
      if (render(JSON.parse(event.data))) source.close();
    });
    source.addEventListener("end", function () { source.close(); });
    source.addEventListener("unavailable", function () { source.close(); poll(); });
    source.onerror = function () {
      // EventSource reconnects by itself after a dropped stream; after repeated failures (a proxy
      // that buffers or forbids streams), fall back to polling the status.
      streamFailures += 1;
      if (streamFailures >= 3 || source.readyState === EventSource.CLOSED) {
        source.close();
        if (!pollTimer) poll();
      }
    };
  }

  if (FINISHED.indexOf(root.dataset.state) < 0) listen();
})();
