// Shows <time class="local-time" datetime="ISO-8601"> in the viewer's own time zone.
// (A file, not an inline script: the site's Content-Security-Policy allows only 'self' scripts.)
"use strict";
(function () {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  function localise(root) {
    for (const el of root.querySelectorAll("time.local-time[datetime]")) {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      el.textContent = format.format(when);
      el.title = zone ? "Your time zone: " + zone : "";
      el.dataset.localised = "1";
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => localise(document));
  } else {
    localise(document);
  }
})();
