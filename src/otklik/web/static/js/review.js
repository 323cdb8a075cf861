// «Копировать» in the review block: the public reply's text to the clipboard (the review site is where it is
// posted). Event delegation: the block is swapped in by htmx.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-target]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy-target"));
    if (!field) return;
    var done = function () {
      button.setAttribute("data-done", "yes");
      button.textContent = button.getAttribute("data-copied") || button.textContent;
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        field.select(); document.execCommand("copy"); done();
      });
    } else {
      field.select(); document.execCommand("copy"); done();
    }
  });
})();
