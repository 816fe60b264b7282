// "Your recent uploads" for anonymous visitors: kept in this browser's localStorage (never on
// the server), so a reload does not lose the links. An upload is remembered as soon as it is
// accepted (with its job's status URL and its secret deletion link), so one still encoding is
// picked up again after a reload. A change redraws only its own item (keyboard focus stays).
// Exposes window.emmmHistory = { remember(job, title), finished(job) }.
(function () {
  "use strict";
  var KEY = "emmm.recentUploads";
  var MAX_ENTRIES = 30;
  var MAX_STORED_URL = 16000; // longer token URLs are not kept (the short link is)
  var section = document.getElementById("history");
  var list = document.getElementById("history-list");
  var form = document.getElementById("upload-form");
  var enabled = section && form && form.dataset.signedIn !== "1" && storageWorks();

  function storageWorks() {
    try { localStorage.setItem(KEY + ".probe", "1"); localStorage.removeItem(KEY + ".probe"); return true; } catch (e) { return false; }
  }

  // Entries as stored, less any this page cannot use (damaged, or from an older page).
  function usable(e) {
    if (!e || typeof e !== "object" || typeof e.job !== "string") return false;
    if (!e.picture) return typeof e.status_url === "string";  // still encoding: it must be asked about
    var p = e.picture;
    return typeof p === "object" && (typeof p.short_url === "string" || typeof p.token_url === "string");
  }

  function load() {
    try { var v = JSON.parse(localStorage.getItem(KEY) || "[]"); return Array.isArray(v) ? v.filter(usable) : []; } catch (e) { return []; }
  }

  function save(entries) {
    try { localStorage.setItem(KEY, JSON.stringify(entries.slice(0, MAX_ENTRIES))); } catch (e) { /* full: keep the page working */ }
  }

  function pictureFields(p) {
    return {
      short_url: p.short_url || null, title: p.title || "", width: p.width, height: p.height, chars: p.chars,
      token_url: p.token_url.length <= MAX_STORED_URL ? p.token_url : null,
    };
  }

  function deleteLink(entry, title) {
    var a = document.createElement("a");
    a.className = "history-delete";
    a.href = entry.deletion_url;
    a.textContent = "Delete…";
    a.setAttribute("aria-label", "Delete " + title);
    return a;
  }

  function item(entry) {
    var li = document.createElement("li");
    li.className = "history-item";
    li.dataset.job = entry.job;
    var p = entry.picture;
    var deletable = typeof entry.deletion_url === "string";
    if (!p) {
      li.textContent = (entry.title || "Upload") + ": still encoding…";
      if (deletable) li.append(" ", deleteLink(entry, entry.title || "this upload"));
      return li;
    }
    var href = p.short_url ? p.short_url + "/" : p.token_url;
    var a = document.createElement("a");
    a.className = "history-open";
    if (href) a.href = href;
    var img = document.createElement("img");
    img.loading = "lazy";
    img.alt = "";  // the caption beside it names the link (the title was read twice)
    img.src = p.short_url ? p.short_url + "?w=192" : (p.token_url || "");
    var caption = document.createElement("span");
    caption.className = "caption";
    caption.dir = "auto";  // a right-to-left title is cut at its end, not its beginning
    caption.textContent = (p.title || "untitled") + (p.width && p.height ? " · " + p.width + "×" + p.height : "");
    a.append(img, caption);
    li.append(a);
    if (p.short_url) {
      var link = document.createElement("input");
      link.readOnly = true;
      link.value = p.short_url;
      link.id = "history-" + entry.job;
      link.className = "history-link";
      link.setAttribute("aria-label", "Short link of " + (p.title || "this upload"));
      var b = document.createElement("button");
      b.type = "button";
      b.className = "copy secondary";
      b.dataset.copy = link.id;
      b.textContent = "Copy";
      li.append(link, b);
    }
    if (deletable) li.append(deleteLink(entry, p.title || "this upload"));
    return li;
  }

  // Items are matched by job: one whose entry did not change is left as it is, and none is
  // moved unless the order changed (moving or replacing an element takes keyboard focus away).
  function render() {
    var entries = load();
    var kept = {};
    entries.forEach(function (e) { kept[e.job] = true; });
    var shown = {};
    Array.prototype.slice.call(list.children).forEach(function (li) {
      if (kept[li.dataset.job] && !shown[li.dataset.job]) shown[li.dataset.job] = li; else li.remove();
    });
    entries.forEach(function (e, i) {
      var drawn = JSON.stringify([e.title, e.picture, e.deletion_url]);
      var li = shown[e.job];
      if (!li || li.dataset.drawn !== drawn) {
        var fresh = item(e);
        fresh.dataset.drawn = drawn;
        if (li) replace(li, fresh);
        li = fresh;
      }
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    section.hidden = entries.length === 0;
  }

  // A changed item that holds the focus: the same control of the new item gets it.
  function replace(old, fresh) {
    var focused = old.contains(document.activeElement) ? document.activeElement : null;
    old.replaceWith(fresh);
    var same = focused && focused.classList[0] && fresh.querySelector("." + focused.classList[0]);
    if (same) same.focus();
  }

  function remember(job, title) {
    if (!enabled) return;
    var entries = load().filter(function (e) { return e.job !== job.id; });
    entries.unshift({ job: job.id, status_url: job.status_url, deletion_url: job.deletion_url || null, title: title || "",
      added: new Date().toISOString(), picture: null });
    save(entries);
    render();
  }

  function finished(job) {
    if (!enabled) return;
    var entries = load();
    entries.forEach(function (e) {
      if (e.job === job.id) e.picture = job.status === "done" && job.picture ? pictureFields(job.picture) : e.picture;
    });
    // a failed upload, or one whose picture has been deleted, has nothing to keep
    var gone = job.status === "failed" || (job.status === "done" && !job.picture);
    save(entries.filter(function (e) { return !(e.job === job.id && gone); }));
    render();
  }

  // once: ask one time only (a finished entry); else until the job ends.
  function resume(entry, delay, once) {
    setTimeout(function () {
      fetch(entry.status_url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 404) return { id: entry.job, status: "failed" };
          if (!r.ok) throw new Error("HTTP " + r.status);  // busy, throttled: ask again later
          return r.json();
        })
        .then(function (job) {
          if (job.status === "done" || job.status === "failed") finished(job); else if (!once) resume(entry, 3000);
        })
        .catch(function () { if (!once) resume(entry, 5000); });
    }, delay);
  }

  if (enabled) {
    save(load());  // drops damaged entries for good
    render();
    // Unfinished uploads are followed; finished ones asked about once (deleted since: dropped).
    load().forEach(function (e, i) { if (e.status_url) resume(e, 500 + 250 * i, !!e.picture); });
    document.getElementById("history-clear").addEventListener("click", function () {
      try { localStorage.removeItem(KEY); } catch (e) { /* nothing to clear */ }
      render();
    });
  }
  window.emmmHistory = { remember: remember, finished: finished };
})();
