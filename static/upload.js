// Progressive enhancement for the upload page: several files, drag and drop, paste,
// per-file status (queued -> encoding -> done) and copy buttons. It uses the REST API
// (POST /api/v1/images, GET /api/v1/jobs/{id}) with the session cookie and the CSRF token.
// Without JS the form posts to / and the result page refreshes until done.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.fetch || !window.FormData) return;
  var input = document.getElementById("images");
  var drop = document.getElementById("drop");
  var results = document.getElementById("results");
  var tpl = document.getElementById("result-tpl");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var uploadUrl = form.dataset.apiUpload;
  var places = JSON.parse(document.getElementById("url-places").textContent);

  function setStatus(li, text, isError) {
    var s = li.querySelector(".status");
    s.textContent = text;
    s.className = "status" + (isError ? " error" : "");
  }

  function errorText(res) {
    var e = res.body && res.body.error;
    return "error " + res.status + ": " + (e && e.message ? e.message : "the upload was refused");
  }

  function showDone(li, picture) {
    li.querySelector(".warning").hidden = true;
    li.querySelector(".worker-notice").hidden = true;
    li.querySelector(".preview").src = picture.token_url;
    li.querySelector(".token-url").value = picture.token_url;
    li.querySelector(".short-url").value = picture.short_url || "";
    var length = picture.token_url.length;
    var fits = places.map(function (p) { return p.place + ": " + (length <= p.limit ? "fits" : "too long"); });
    li.querySelector(".fits").textContent =
      "Token: " + picture.chars + " characters; URL: " + length + ". " + fits.join(" · ");
    li.querySelector(".done").hidden = false;
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

  // true when nothing more will change (polling stops)
  function show(li, job) {
    if (job.status === "done") {
      setStatus(li, "done");
      showDone(li, job.picture);
      showDuplicate(li, job.duplicate);
      return !job.similarity_pending;
    }
    if (job.status === "failed") { setStatus(li, "failed: " + job.error, true); return true; }
    setStatus(li, job.status === "running" ? "encoding" : "queued");
    var notice = li.querySelector(".worker-notice");
    notice.textContent = job.worker ? job.worker.message : "";
    notice.hidden = !job.worker;
    return false;
  }

  function poll(li, url, delay) {
    setTimeout(function () {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (job) { if (!show(li, job)) poll(li, url, Math.min(delay * 1.5, 3000)); })
        .catch(function () { poll(li, url, 3000); });
    }, delay);
  }

  function send(file) {
    var li = tpl.content.firstElementChild.cloneNode(true);
    results.appendChild(li);
    setStatus(li, "uploading " + (file.name || "image"));
    var data = new FormData();
    data.append("file", file);
    ["title", "album", "kind"].forEach(function (n) { var el = form.elements[n]; if (el && el.value) data.append(n, el.value); });
    fetch(uploadUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf },
    })
      .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
      .then(function (res) {
        if (res.status !== 202 && res.status !== 201) { setStatus(li, errorText(res), true); return; }
        var job = res.body;
        if (job.warning) {
          var w = li.querySelector(".warning");
          w.textContent = job.warning.message;
          w.hidden = false;
        }
        if (!show(li, job)) poll(li, job.status_url, 300);
      })
      .catch(function () { setStatus(li, "upload failed (network)", true); });
  }

  function sendAll(files) { Array.prototype.forEach.call(files, send); }

  form.addEventListener("submit", function (e) {
    if (!input.files.length) return;
    e.preventDefault();
    sendAll(input.files);
    form.reset();
  });
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) { sendAll(e.dataTransfer.files); });
  document.addEventListener("paste", function (e) {
    var files = [];
    Array.prototype.forEach.call(e.clipboardData.items || [], function (it) {
      if (it.kind === "file" && it.type.indexOf("image/") === 0) files.push(it.getAsFile());
    });
    if (files.length) sendAll(files);
  });
  results.addEventListener("click", function (e) {
    var b = e.target.closest("button.copy");
    if (!b) return;
    var field = b.parentNode.querySelector("." + b.dataset.target);
    if (navigator.clipboard) navigator.clipboard.writeText(field.value); else { field.select(); document.execCommand("copy"); }
    b.textContent = "Copied";
  });
})();
