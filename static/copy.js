// Copy buttons: <button class="copy" data-copy="ID"> copies the value (or text) of element #ID.
// When the browser refuses, the button says so and the text is selected for Ctrl+C.
(function () {
  "use strict";
  var resets = new WeakMap();

  function select(el, focus) {
    if (el.select) {
      if (focus) el.focus();
      el.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(el);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
  }

  function copyText(el) {
    var text = "value" in el ? el.value : el.textContent;
    if (navigator.clipboard && navigator.clipboard.writeText && window.isSecureContext) return navigator.clipboard.writeText(text);
    select(el, false);
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function say(b, status, text, ms) {
    b.textContent = text;
    if (status) status.textContent = text === "Copied" ? text : text + ": the text is selected, press Ctrl+C (⌘C) to copy it";
    clearTimeout(resets.get(b));
    resets.set(b, setTimeout(function () { b.textContent = "Copy"; if (status) status.textContent = ""; }, ms));
  }

  document.addEventListener("click", function (e) {
    var b = e.target.closest("button.copy[data-copy]");
    if (!b) return;
    var el = document.getElementById(b.dataset.copy);
    if (!el) return;
    var status = document.getElementById("copy-status");  // heard by screen readers (base.html)
    copyText(el).then(function () {
      say(b, status, "Copied", 2000);
    }, function () {
      select(el, true);
      say(b, status, "Copy failed", 6000);
    });
  });
})();
