// Readable times: every <time datetime="ISO"> reads "3 min ago · 14:02:07" in the reader's own time
// zone, with the exact ISO time on hover; relative times are kept fresh while the page is open.
// The server writes ISO UTC, so a page without script still shows an exact time.
(function () {
  "use strict";
  var UNITS = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];

  function relative(seconds) {
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    if (seconds < 5) return "just now";
    for (var i = 0; i < UNITS.length; i++) {
      if (seconds >= UNITS[i][1]) {
        var n = Math.floor(seconds / UNITS[i][1]) + " " + UNITS[i][0];
        return future ? "in " + n : n + " ago";
      }
    }
    return "just now";
  }

  function local(date) {
    var sameDay = date.toDateString() === new Date().toDateString();
    var options = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (!sameDay) { options.year = "numeric"; options.month = "short"; options.day = "numeric"; }
    return date.toLocaleString(undefined, options);
  }

  function show(el) {
    var iso = el.getAttribute("datetime");
    var date = iso ? new Date(iso) : null;
    if (!date || isNaN(date.getTime())) return;
    el.textContent = relative((Date.now() - date.getTime()) / 1000) + " · " + local(date);
    el.title = iso;
  }

  function showAll() { document.querySelectorAll("time[datetime]").forEach(show); }

  // For scripts that change a time (the task page's live updates).
  window.showTime = function (el, iso) {
    if (!el) return;
    if (iso) { el.setAttribute("datetime", iso); show(el); }
    else { el.removeAttribute("datetime"); el.removeAttribute("title"); el.textContent = "–"; }
  };
  // A form's datetime-local inputs carry no zone: a hidden input[data-time-zone] tells the server the
  // reader's (an IANA name, so that a time across a daylight-saving change gets its own offset).
  document.querySelectorAll("input[data-time-zone]").forEach(function (input) {
    try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* read as UTC */ }
  });
  showAll();
  setInterval(showAll, 15000);
})();
