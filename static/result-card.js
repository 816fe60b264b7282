// The result card of one finished upload (upload page): preview, short link and token URL
// with copy buttons, stored size, length and where the link fits, the quality note, and the
// share tools (QR code of the short link, Markdown / HTML / BBCode snippets).
// Exposes window.emmmResultCard = { fill(li, job, ctx), deletion(li, url), snippets(page, image, title) }.
(function () {
  "use strict";
  var counter = 0;
  var places = JSON.parse(document.getElementById("url-places").textContent);

  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // Same snippets as the share tools on the picture and share pages (imagehost/views/sharing.py).
  function snippets(page, image, title) {
    var alt = title || "picture";
    return [
      ["Markdown", "[![" + alt.replace(/[\\\[\]]/g, "\\$&") + "](" + image + ")](" + page + ")"],
      ["HTML", '<a href="' + escapeHtml(page) + '"><img src="' + escapeHtml(image) + '" alt="' + escapeHtml(alt) + '"></a>'],
      ["BBCode", "[url=" + page + "][img]" + image + "[/img][/url]"],
    ];
  }

  function copyRow(id, label, value, extraClass) {
    var row = document.createElement("div");
    row.className = "copy-row";
    var l = document.createElement("label");
    l.htmlFor = id;
    l.textContent = label;
    var input = document.createElement("input");
    input.id = id;
    input.readOnly = true;
    input.value = value;
    input.className = "copy-src " + (extraClass || "");
    var b = document.createElement("button");
    b.type = "button";
    b.className = "copy";
    b.dataset.copy = id;
    b.textContent = "Copy";
    row.append(l, input, b);
    return row;
  }

  function sizeText(picture, original, coded) {
    var stored = picture.width + "×" + picture.height;
    var from = original ? original.width + "×" + original.height : null;
    var text = !from ? "Stored at " + stored : (from === stored ? "Stored at its own size, " + stored : "Stored at " + stored + " from your " + from);
    if (coded && (coded.width < picture.width || coded.height < picture.height)) {  // a side under 16 px is coded larger
      text += "; coded at " + coded.width + "×" + coded.height + " to fit the link budget (less detail)";
    }
    return text + ".";
  }

  function fitsText(length) {
    return places.map(function (p) { return p.place + ": " + (length <= p.limit ? "fits" : "too long"); }).join(" · ");
  }

  // Wire the card's fixed copy rows (ids must be unique on the page).
  function wireCopy(li, field, id) {
    var input = li.querySelector("." + field);
    input.id = id;
    li.querySelector("button.copy[data-field=" + field + "]").dataset.copy = id;
    var label = input.parentNode.querySelector("label");
    if (label) label.htmlFor = id;
  }

  // ctx: {original: {width, height} | null, kind: "vae" | "avif"}
  function fill(li, job, ctx) {
    var picture = job.picture;
    var n = ++counter;
    li.querySelector(".warning").hidden = true;
    li.querySelector(".worker-notice").hidden = true;
    var preview = li.querySelector(".preview");
    if (picture.width > 0 && picture.height > 0) {  // its box before it loads: the card does not jump (site.css .preview.sized)
      preview.width = picture.width;
      preview.height = picture.height;
      preview.style.setProperty("--w", picture.width + "px");
      preview.style.setProperty("--ratio", String(picture.width / picture.height));
      preview.classList.add("sized");
    }
    preview.src = picture.token_url;
    preview.alt = picture.title || "your image";
    li.querySelector(".preview-link").href = picture.short_url ? picture.short_url + "/" : picture.token_url;
    li.querySelector(".token-url").value = picture.token_url;
    li.querySelector(".short-url").value = picture.short_url || "";
    li.querySelector(".short-url").parentNode.hidden = !picture.short_url;  // its reserved link was deleted
    wireCopy(li, "token-url", "r" + n + "-token");
    wireCopy(li, "short-url", "r" + n + "-short");
    var length = picture.token_url.length;
    li.querySelector(".facts").textContent = sizeText(picture, ctx.original, job.coded) + " Token: " + picture.chars.toLocaleString("en") +
      " characters; link: " + length.toLocaleString("en") + ".";
    li.querySelector(".fits").textContent = fitsText(length);
    li.querySelector(".quality-note").hidden = (ctx.kind || "vae") === "avif";
    li.querySelector(".retry-avif").hidden = !ctx.file;
    var share = li.querySelector(".share");
    share.hidden = !picture.short_url;
    if (picture.short_url) {
      var page = picture.short_url + "/";
      li.querySelector(".qr-img").src = picture.short_url + "/qr.svg";
      var box = li.querySelector(".snippets");
      box.textContent = "";
      box.append(copyRow("r" + n + "-page", "Share page", page));
      snippets(page, picture.short_url, picture.title).forEach(function (s) {
        box.append(copyRow("r" + n + "-" + s[0].toLowerCase(), s[0], s[1], "snippet"));
      });
    }
    li.querySelector(".done").hidden = false;
  }

  // The upload's secret deletion link: only in the upload's answer, so shown at once.
  function deletion(li, url) {
    var row = li.querySelector(".deletion");
    row.hidden = !url;
    if (!url) return;
    li.querySelector(".deletion-url").value = url;
    wireCopy(li, "deletion-url", "r" + (++counter) + "-delete");
  }

  window.emmmResultCard = { fill: fill, deletion: deletion, snippets: snippets };
})();
