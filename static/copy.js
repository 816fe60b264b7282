// Copy buttons: <button class="copy" data-copy="ID"> copies the value (or text) of element #ID.
(function () {
  "use strict";
  function copyText(el) {
    var text = "value" in el ? el.value : el.textContent;
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    if (el.select) el.select();
    document.execCommand("copy");
    return Promise.resolve();
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest("button.copy[data-copy]");
    if (!b) return;
    var el = document.getElementById(b.dataset.copy);
    if (!el) return;
    var status = document.getElementById("copy-status");  // heard by screen readers (base.html)
    copyText(el).then(function () {
      b.textContent = "Copied";
      if (status) status.textContent = "Copied";
      setTimeout(function () { b.textContent = "Copy"; if (status) status.textContent = ""; }, 2000);
    }, function () {
      if (status) status.textContent = "Copy failed: select the text and copy it yourself";
    });
  });
})();
