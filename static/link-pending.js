// A short link whose picture is still being encoded: asks the image URL (HEAD, as an image
// client) whether it is ready, as often as its Retry-After says, and loads the page once,
// when the answer is a definite one (the picture, or why there will be none): a proxy's 502,
// a timeout or no connection at all is asked again, less often each time.
// Without this script the page's "check again" link does the same by hand.
"use strict";
(function () {
  const status = document.getElementById("link-encoding");
  if (!status || !status.dataset.pollUrl) return;
  const giveUpAt = Date.now() + 10 * 60 * 1000;  // then the reader checks again by hand
  const seconds = (value, fallback) => {
    const n = Number.parseInt(value || "", 10);
    return Number.isFinite(n) && n > 0 ? Math.min(n, 60) : fallback;
  };
  let wait = seconds(status.dataset.retryS, 3);
  let failures = 0;  // answers in a row that said nothing about the picture
  const backoff = () => Math.min(wait * 2 ** failures++, 60);
  const passing = (code) => code === 503 || code === 429 || code === 408 || code >= 500;
  function schedule(s) {
    if (Date.now() + s * 1000 > giveUpAt) {
      status.textContent = "Still encoding. Use “check again” below to look once more.";
      return;
    }
    setTimeout(ask, s * 1000);
  }
  function ask() {
    fetch(status.dataset.pollUrl, { method: "HEAD", headers: { Accept: "image/webp,image/*" }, cache: "no-store" })
      .then((response) => {
        if (passing(response.status)) {
          const still = response.status === 503 || response.status === 429;  // the app's own "not yet"
          if (still) failures = 0;
          schedule(seconds(response.headers.get("Retry-After"), still ? wait : backoff()));
          return;
        }
        status.textContent = "Ready: loading the picture…";
        window.location.reload();
      })
      .catch(() => schedule(backoff()));  // offline for a moment: ask again later
  }
  schedule(wait);
})();
