/* Live countdowns to a schedule's next fire: every element with class tw-countdown
   and an ISO instant in data-at shows the time left, updated each second. The
   server renders the same words first, so the page reads right without script. */
(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function words(seconds) {
    if (seconds <= 0) { return "due now"; }
    var days = Math.floor(seconds / 86400), hours = Math.floor(seconds % 86400 / 3600),
        minutes = Math.floor(seconds % 3600 / 60), secs = seconds % 60;
    if (days) { return "in " + days + "d " + hours + "h " + pad(minutes) + "m " + pad(secs) + "s"; }
    if (hours) { return "in " + hours + "h " + pad(minutes) + "m " + pad(secs) + "s"; }
    return minutes ? "in " + minutes + "m " + pad(secs) + "s" : "in " + secs + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".tw-countdown[data-at]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-at"));
      if (!isNaN(at)) { el.textContent = words(Math.floor((at - now) / 1000)); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
})();
