// Shows <time class="local-time" datetime="ISO-8601"> in the viewer's own time zone, and sends
// a form's <input type="datetime-local"> (the viewer's wall time) as an instant: without this
// script the server reads it as UTC, which the field's .zone-hint says.
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
  const two = (n) => String(n).padStart(2, "0");
  function wallTime(when) {  // a datetime-local value: the viewer's own date and time
    return when.getFullYear() + "-" + two(when.getMonth() + 1) + "-" + two(when.getDate()) + "T" +
      two(when.getHours()) + ":" + two(when.getMinutes());
  }
  // The field's name moves to one hidden input that carries the instant, set again at every
  // submit (a second submit after a correction, or with the field cleared, sends what it shows).
  function sendInstants(root) {
    for (const input of root.querySelectorAll("form input[type=datetime-local][name]")) {
      const name = input.name;
      const hint = input.parentElement.querySelector(".zone-hint");
      if (hint) hint.textContent = zone ? "your time (" + zone + ")" : "your time";
      const sent = input.getAttribute("value") || "";
      if (/(Z|[+-]\d\d:\d\d)$/.test(sent)) {  // a refused form gives back the instant this script sent
        const when = new Date(sent);
        if (!Number.isNaN(when.getTime())) input.value = wallTime(when);
      }
      let instant = null;
      const sendAsTyped = () => {
        if (instant) instant.remove();
        instant = null;
        input.name = name;
      };
      input.form.addEventListener("submit", () => {
        const when = new Date(input.value);  // a datetime-local value is read as local time
        if (!input.value || Number.isNaN(when.getTime())) {
          sendAsTyped();
          return;
        }
        if (!instant) {
          instant = document.createElement("input");
          instant.type = "hidden";
          instant.name = name;
          input.form.append(instant);
        }
        instant.value = when.toISOString();
        input.removeAttribute("name");
      });
      // Back to this page (back/forward cache): as it was before any submit.
      window.addEventListener("pageshow", (e) => { if (e.persisted) sendAsTyped(); });
    }
  }
  function start() {
    localise(document);
    sendInstants(document);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
