// The outage page: reload after the number of seconds it names, until the service answers again.
// A script, not <meta http-equiv="refresh">: a timed refresh the reader did not ask for is an axe
// violation (meta-refresh), while the page says in words that it tries again (the noscript meta stays).
(function () {
  var hint = document.getElementById("retry-hint");
  var seconds = hint ? Number(hint.getAttribute("data-retry-after")) : 0;
  if (seconds > 0) {
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();
