// Progressive enhancement for the upload page: several files, drag and drop, paste,
// per-file status (queued -> encoding -> done) and copy buttons. Without JS the form posts.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.fetch || !window.FormData) return;
  var input = document.getElementById("images");
  var drop = document.getElementById("drop");
  var results = document.getElementById("results");
  var tpl = document.getElementById("result-tpl");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function setStatus(li, text, isError) {
    var s = li.querySelector(".status");
    s.textContent = text;
    s.className = "status" + (isError ? " error" : "");
  }

  function showDone(li, job) {
    var done = li.querySelector(".done");
    li.querySelector(".preview").src = job.token_url;
    li.querySelector(".token-url").value = job.token_url;
    li.querySelector(".short-url").value = job.short_url || "";
    var fits = job.fits.map(function (f) { return f.place + ": " + (f.fits ? "fits" : "too long"); });
    li.querySelector(".fits").textContent =
      "Token: " + job.chars + " characters; URL: " + job.url_length + ". " + fits.join(" · ");
    done.hidden = false;
  }

  function poll(li, url, delay) {
    setTimeout(function () {
      fetch(url, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (job) {
          if (job.status === "done") { setStatus(li, "done"); showDone(li, job); }
          else if (job.status === "failed") { setStatus(li, "failed: " + job.error, true); }
          else { setStatus(li, job.status === "running" ? "encoding" : "queued"); poll(li, url, Math.min(delay * 1.5, 3000)); }
        })
        .catch(function () { poll(li, url, 3000); });
    }, delay);
  }

  function send(file) {
    var li = tpl.content.firstElementChild.cloneNode(true);
    results.appendChild(li);
    setStatus(li, "uploading " + (file.name || "image"));
    var data = new FormData();
    data.append("images", file);
    ["title", "album"].forEach(function (n) { var el = form.elements[n]; if (el && el.value) data.append(n, el.value); });
    fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json", "X-CSRFToken": csrf } })
      .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
      .then(function (res) {
        if (res.status !== 202) { setStatus(li, "error " + res.status + ": " + res.body.error, true); return; }
        var job = res.body.jobs[0];
        setStatus(li, "queued");
        poll(li, job.status_url, 300);
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
