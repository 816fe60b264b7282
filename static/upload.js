// Progressive enhancement for the upload page: several files, drag and drop, paste, the
// planned stored size of each chosen file, per-file status (queued with its place in line and
// an estimate -> encoding -> done) and the result card (static/result-card.js). It uses the
// REST API (POST /api/v1/images, GET /api/v1/jobs/{id}) with the session cookie and the CSRF
// token. Without JS the form posts to / and the result page refreshes until done.
// An upload refused for a moment (429, 503) is sent again after its Retry-After; a poll that
// gets no answer (or no job) says so and asks again later, less often each time.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.fetch || !window.FormData) return;
  var input = document.getElementById("images");
  var drop = document.getElementById("drop");
  var planned = document.getElementById("planned");
  var results = document.getElementById("results");
  var tpl = document.getElementById("result-tpl");
  var MAX_SENDS = 5;  // an upload refused for a moment is sent at most this often
  var MAX_BACKOFF = 60000;
  var uploadUrl = form.dataset.apiUpload;
  var sizeRule = JSON.parse(document.getElementById("size-rule").textContent);
  var card = window.emmmResultCard;
  var history = window.emmmHistory || { remember: function () {}, finished: function () {} };

  // Read at each request: signing in or out in another tab rotates the token.
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  // The codec's downscale rule (codec.stored_size): at most max_pixels, aspect kept.
  function storedSize(w, h) {
    var scale = Math.min(1, Math.sqrt(sizeRule.max_pixels / (w * h)), sizeRule.max_side / Math.max(w, h));
    return scale >= 1 ? { width: w, height: h } : { width: Math.max(1, Math.floor(w * scale)), height: Math.max(1, Math.floor(h * scale)) };
  }

  // The file's own size as the browser shows it (EXIF orientation applied), or null.
  function measure(file) {
    if (!window.createImageBitmap) return Promise.resolve(null);
    return createImageBitmap(file).then(function (bmp) {
      var size = { width: bmp.width, height: bmp.height };
      if (bmp.close) bmp.close();
      return size;
    }).catch(function () { return null; });
  }

  var plannedRun = 0;  // a measurement that ends after the choice changed adds nothing

  function showPlanned(files) {
    var run = ++plannedRun;
    planned.textContent = "";
    Array.prototype.forEach.call(files, function (file) {
      measure(file).then(function (size) {
        if (!size || run !== plannedRun) return;
        var s = storedSize(size.width, size.height);
        var li = document.createElement("li");
        li.textContent = (file.name || "image") + ": " + size.width + "×" + size.height +
          (s.width === size.width && s.height === size.height ? ", stored at its own size" : " → stored at " + s.width + "×" + s.height);
        planned.append(li);
      });
    });
  }

  // The card's status; a screen reader hears it once per change (its own small status region:
  // the whole list as a live region read out every poll's new time estimate, and whole cards).
  function setStatus(li, text, isError) {
    var s = li.querySelector(".status");
    if (s.textContent === text) return;
    s.textContent = text;
    s.className = "status" + (isError ? " error" : "");
    li.querySelector(".announce").textContent = li.querySelector(".name").textContent + " " +
      (text === "done" ? "done, the short link is ready" : text);
  }

  function errorText(res) {
    var e = res.body && res.body.error;
    var message = e && e.message ? e.message : "the upload was refused";
    if (res.status === 403 && /CSRF/i.test(message)) {
      return "error 403: this page is out of date (its security check failed): reload the page and upload again";
    }
    return "error " + res.status + ": " + message;
  }

  function ordinal(n) {
    var s = ["th", "st", "nd", "rd"], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function duration(seconds) {
    if (seconds < 60) return "about " + Math.max(1, Math.round(seconds)) + " s";
    return "about " + Math.round(seconds / 60) + " min";
  }

  function etaText(job) {
    var q = job.queue;
    if (!q) return "";
    var where = q.position === 0 ? "" : (q.position === 1 ? "next in line" : ordinal(q.position) + " in line");
    var left = q.estimate_s == null ? "" : duration(q.estimate_s) + (q.position === 0 ? " left" : " to done");
    return [where, left].filter(Boolean).join(" · ");
  }

  function showDuplicate(li, dup) {
    var p = li.querySelector(".near-duplicate");
    p.textContent = "";
    if (!dup) { p.hidden = true; return; }
    var a = document.createElement("a");
    a.href = dup.url;
    a.textContent = dup.title || "your picture";
    p.append("You already have this picture: ", a, " (similarity " + dup.score.toFixed(2) + ").");
    p.hidden = false;
  }

  // Every final state: what was said about waiting no longer applies; gone: nothing left to delete.
  function finish(li, gone) {
    li.querySelector(".eta").textContent = "";
    ["warning", "worker-notice"].forEach(function (name) {
      var notice = li.querySelector("." + name);
      notice.textContent = "";
      notice.hidden = true;
    });
    if (gone) li.querySelector(".deletion").hidden = true;
  }

  // true when nothing more will change (polling stops)
  function show(li, job, ctx) {
    if (job.status === "done" && !job.picture) {  // done, then deleted (its deletion link, or its owner)
      finish(li, true);
      setStatus(li, "deleted");
      history.finished(job);
      return true;
    }
    if (job.status === "done") {
      finish(li, false);
      setStatus(li, "done");
      if (!ctx.shown) { card.fill(li, job, ctx); history.finished(job); ctx.shown = true; }
      showDuplicate(li, job.duplicate);
      return !job.similarity_pending;
    }
    if (job.status === "failed") {
      finish(li, true);
      setStatus(li, "failed: " + job.error, true);
      history.finished(job);
      return true;
    }
    setStatus(li, job.status === "running" ? "encoding" : "queued");
    li.querySelector(".eta").textContent = etaText(job);
    var notice = li.querySelector(".worker-notice");
    notice.textContent = job.worker ? job.worker.message : "";
    notice.hidden = !job.worker;
    return false;
  }

  // Retry-After (seconds) of an answer, in ms, else the fallback.
  function retryAfter(r, fallback) {
    var seconds = parseInt(r.headers.get("Retry-After"), 10);
    return seconds > 0 ? Math.min(seconds, 300) * 1000 : fallback;
  }

  // No answer, or none that is a job: the last status stays, said to be stale; asked again
  // after 2, 4, 8... s (at most MAX_BACKOFF).
  function lost(li, url, ctx, why) {
    ctx.failures += 1;
    var wait = Math.min(1000 * Math.pow(2, ctx.failures), MAX_BACKOFF);
    li.querySelector(".eta").textContent = why + ": checking again in " + Math.round(wait / 1000) + " s";
    poll(li, url, wait, ctx);
  }

  function poll(li, url, delay, ctx) {
    setTimeout(function () {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(function (r) {
        if (r.ok) {
          return r.json().then(function (job) {
            ctx.failures = 0;
            ctx.pace = Math.min(ctx.pace * 1.5, 3000);
            if (!show(li, job, ctx)) poll(li, url, ctx.pace, ctx);
          }, function () { lost(li, url, ctx, "the server answered an error"); });  // a portal's or proxy's page
        }
        if (r.status === 404) {  // the job is gone: nothing will change any more
          finish(li, true);
          setStatus(li, "this upload no longer exists", true);
          history.finished({ id: ctx.jobId, status: "failed" });
          return;
        }
        if (r.status === 429 || r.status === 503) {
          var wait = retryAfter(r, 5000);
          li.querySelector(".eta").textContent = (r.status === 429 ? "asked too often" : "the server is busy") +
            ": checking again in " + Math.round(wait / 1000) + " s";
          poll(li, url, wait, ctx);
          return;
        }
        lost(li, url, ctx, "the server answered an error");
      }, function () { lost(li, url, ctx, "connection lost"); });
    }, delay);
  }

  // A refused upload gives the title it took back to the form (unless something else was typed
  // there since): what was typed is not lost. batch: {title} of the files sent together.
  function giveBackTitle(batch) {
    var field = form.elements.title;
    if (batch && batch.title && field && !field.value) field.value = batch.title;
  }

  // options: the form's fields at the time of sending ({title, album, kind, budget}); batch: see
  // giveBackTitle (none for an AVIF retry); retry: this card encodes an earlier card's file as AVIF.
  function send(file, options, batch, retry) {
    var li = tpl.content.firstElementChild.cloneNode(true);
    results.prepend(li);
    li.querySelector(".name").textContent = (file.name || "image") + (retry ? " (AVIF)" : "") + ":";
    setStatus(li, "uploading");
    var ctx = { original: null, kind: options.kind || "vae", file: options.kind === "avif" ? null : file, shown: false,
      pace: 300, failures: 0, batch: batch || null };  // pace: the delay between polls while answers come
    measure(file).then(function (size) { ctx.original = size; });
    li.querySelector(".retry-avif").addEventListener("click", function () {
      // One AVIF upload per card; aria-disabled, not disabled, so that keyboard focus stays here
      // (a disabled button drops it to the page) while the new card's status is announced.
      if (this.getAttribute("aria-disabled") === "true") return;
      this.setAttribute("aria-disabled", "true");
      this.textContent = "Sent as AVIF";
      send(file, Object.assign({}, options, { kind: "avif" }), null, true);
    });
    post(li, file, options, ctx, 1);
  }

  function post(li, file, options, ctx, sends) {
    var data = new FormData();
    data.append("file", file);
    Object.keys(options).forEach(function (n) { if (options[n]) data.append(n, options[n]); });
    fetch(uploadUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (r) {  // a proxy's refusal may not be JSON: its status still says what happened
      return r.json().catch(function () { return null; }).then(function (body) { answered(r, body); });
    }, function () { setStatus(li, "upload failed (network)", true); giveBackTitle(ctx.batch); });

    function answered(r, job) {
      if ((r.status === 429 || r.status === 503) && sends < MAX_SENDS) {
        var wait = retryAfter(r, 5000);
        setStatus(li, "waiting " + Math.round(wait / 1000) + " s: " +
          (r.status === 429 ? "too many uploads at once" : "the server is busy"));
        setTimeout(function () {
          setStatus(li, "uploading");
          post(li, file, options, ctx, sends + 1);
        }, wait);
        return;
      }
      if (r.status !== 202 && r.status !== 201) {
        setStatus(li, errorText({ status: r.status, body: job }), true);
        giveBackTitle(ctx.batch);
        return;
      }
      ctx.jobId = job.id;
      card.deletion(li, job.deletion_url);
      history.remember(job, options.title);
      if (job.warning) {
        var w = li.querySelector(".warning");
        w.textContent = job.warning.message;
        w.hidden = false;
      }
      if (!show(li, job, ctx)) poll(li, job.status_url, 300, ctx);
    }
  }

  function currentOptions() {
    var options = {};
    ["title", "album", "kind", "budget"].forEach(function (n) {
      var el = form.elements[n];
      if (el && el.value) options[n] = el.value;
    });
    return options;
  }

  // However the files come (the form, a drop, a paste), the title goes with these ones only:
  // the field is emptied at once, and given back if they are refused (giveBackTitle).
  function sendAll(files) {
    var options = currentOptions();
    var batch = { title: options.title || "" };
    Array.prototype.forEach.call(files, function (f) { send(f, options, batch); });
    form.elements.title.value = "";
  }

  input.addEventListener("change", function () { showPlanned(input.files); });
  form.addEventListener("submit", function (e) {
    if (!input.files.length) return;
    e.preventDefault();
    sendAll(input.files);
    input.value = "";
    plannedRun++;
    planned.textContent = "";
  });
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) { sendAll(e.dataTransfer.files); });
  // Elsewhere on the page the browser would open a dropped file in place of the page (and the form).
  ["dragover", "drop"].forEach(function (t) {
    document.addEventListener(t, function (e) {
      if (!e.dataTransfer || Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") < 0) return;
      e.preventDefault();
      if (!drop.contains(e.target)) e.dataTransfer.dropEffect = "none";
    });
  });
  document.addEventListener("paste", function (e) {
    var files = [];
    Array.prototype.forEach.call(e.clipboardData.items || [], function (it) {
      if (it.kind === "file" && it.type.indexOf("image/") === 0) files.push(it.getAsFile());
    });
    if (files.length) sendAll(files);
  });
})();
