/* The schedule form shows only the fields of the chosen kind (cron, interval or one-shot).
   Hidden fields keep their values; the server validates what the kind uses. */
(function () {
  "use strict";
  var OWN = {cron: ["cron"], interval: ["interval_seconds", "interval_mode"], once: ["run_at"]};
  function show(kind) {
    Object.keys(OWN).forEach(function (k) {
      OWN[k].forEach(function (name) {
        document.querySelectorAll(".form-row.field-" + name + ", .fieldBox.field-" + name).forEach(function (row) {
          row.hidden = k !== kind;
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_kind");
    if (!select) { return; }
    show(select.value);
    select.addEventListener("change", function () { show(select.value); });
  });
})();
