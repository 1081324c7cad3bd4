/* The agent form shows the config fields of the chosen adapter only (each adapter declares its own). */
(function () {
  "use strict";
  function show(kind) {
    document.querySelectorAll("fieldset.tw-adapter-config").forEach(function (set) {
      set.hidden = !set.classList.contains("tw-adapter-" + kind);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_adapter");
    if (!select) { return; }
    show(select.value);
    select.addEventListener("change", function () { show(select.value); });
  });
})();
