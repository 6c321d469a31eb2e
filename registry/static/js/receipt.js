/* Receipt slip: the print button, and the print dialog when the desk opens the slip. */
"use strict";

(function () {
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
  if (document.body.dataset.autoprint === "1") {
    window.addEventListener("load", function () {
      window.setTimeout(function () { window.print(); }, 50);
    });
  }
})();
