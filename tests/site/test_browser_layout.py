"""Layout measured in headless Chromium on a phone (390x844, touch): tables that keep their words
whole, buttons that do not touch, tap targets of about 40 px, similarity scores that a long title
does not hide, images that hold their place before they load, input edges that can be seen (WCAG
1.4.11), and the upload page's cards (a refused upload keeps its title; the AVIF retry's card)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from imagehost.models import EncodeJob, JobStatus, Visibility, deletion_digest
from imagehost.services import library, links
from tests.similar_helpers import fresh_index, store_vector, unit  # noqa: F401 (fixture)

from .chromium import allow_sync_orm_beside_playwright, browser, sign_in  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
TAP = 39.5  # about 40 px: a finger's width


def open_page(browser, scheme="light", **context):
    context = browser.new_context(**{**PHONE, "color_scheme": scheme, **context})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def box(page, selector):
    b = page.locator(selector).bounding_box()
    assert b is not None, f"{selector} is not shown"
    return b


def gap(a, b) -> float:
    """The distance between two boxes (0 when they touch or overlap)."""
    dx = max(b["x"] - (a["x"] + a["width"]), a["x"] - (b["x"] + b["width"]), 0)
    dy = max(b["y"] - (a["y"] + a["height"]), a["y"] - (b["y"] + b["height"]), 0)
    return max(dx, dy)


def fulfill_json(route, status, body):
    route.fulfill(status=status, headers={"Content-Type": "application/json"}, body=json.dumps(body))


def job_json(live_server, status="queued", **fields):
    job = {"id": "j1", "status": status, "error": "", "status_url": live_server.url + "/api/v1/jobs/j1", "picture": None,
           "worker": None, "duplicate": None, "similarity_pending": False, "queue": None, "coded": None}
    job.update(fields)
    return job


def picture_json(live_server, width=64, height=48):
    return {"id": 1, "title": "", "album": None, "token": "abc", "token_url": live_server.url + "/i/abc",
            "short_url": live_server.url + "/s/abcdef", "width": width, "height": height, "chars": 3,
            "model": "taef2", "taken_down": False, "created": "2025-01-01T00:00:00Z"}


# 1. the API tokens table -------------------------------------------------------------------
#: Words of the element's text drawn on more than one line ("Star/ts", "Creat/ed", "emm/m_FR…").
BROKEN_WORDS_JS = r"""(root) => {
  const broken = [], walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, re = /\S+/g;
    let m;
    while ((m = re.exec(node.nodeValue))) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (lines.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""


def test_the_api_tokens_table_keeps_its_words_whole_on_a_phone(browser, live_server, user):
    """table.tokens had no style: in 390 px its five columns broke every word ("Star/ts with")."""
    from imagehost.api.models import ApiToken

    ApiToken.issue(user, "My nightly backup script on the home server")
    ApiToken.issue(user, "second")[0].revoke()
    page, errors = open_page(browser)
    sign_in(page, live_server)
    page.goto(live_server.url + "/api/tokens/")
    table = page.locator("table.tokens")
    assert page.evaluate(BROKEN_WORDS_JS, table.element_handle()) == []
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], "the page scrolls sideways"
    revoke = box(page, "table.tokens button")
    assert revoke["x"] + revoke["width"] <= 390 and errors == []


# 2. buttons that touch ---------------------------------------------------------------------
def test_buttons_one_above_the_other_do_not_touch(browser, live_server, user, make_picture):
    """Move / "Delete this picture…", Save / "Delete album" and ↑ ↓ sat 0 px apart."""
    album = library.create_album(user, "Coast", Visibility.PRIVATE)
    pics = [make_picture(user, album=album, title=t) for t in ("One", "Two", "Three")]
    page, errors = open_page(browser)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/p/{pics[0].pk}/")
    move = box(page, "form:has(input[name=action][value=album]) button")
    delete = box(page, "form.picture-delete button")
    assert gap(move, delete) >= 8, (move, delete)
    page.goto(f"{live_server.url}/albums/{album.slug}/")
    save = box(page, "form:has(input[name=action][value=update]) button")
    delete_album = box(page, "form:has(input[name=action][value=delete]) button")
    assert gap(save, delete_album) >= 8, (save, delete_album)
    up, down = box(page, ".album-grid li:nth-child(2) button[value=up]"), box(page, ".album-grid li:nth-child(2) button[value=down]")
    assert gap(up, down) >= 4, (up, down)
    assert errors == []


def test_the_recent_uploads_copy_and_delete_do_not_touch(browser, live_server):
    page, errors = open_page(browser)
    page.goto(live_server.url + "/")
    stored = [{"job": "j1", "title": "beach", "deletion_url": live_server.url + "/delete/secret/",
               "picture": {"short_url": live_server.url + "/s/abcdef", "token_url": None, "title": "beach", "width": 64, "height": 48}}]
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", ["emmm.recentUploads", json.dumps(stored)])
    page.route("**/s/abcdef**", lambda route: route.abort())
    page.reload()
    copy, delete = box(page, "#history-list button.copy"), box(page, "#history-list .history-delete")
    assert gap(copy, delete) >= 8, (copy, delete)
    assert errors == []


# 3. tap targets ----------------------------------------------------------------------------
HEIGHTS_JS = "els => els.map(e => [e.textContent.trim(), e.getBoundingClientRect().height])"


def test_small_controls_are_tall_enough_to_tap_on_a_phone(browser, live_server, user, make_picture):
    """Header links were 24 px tall; "never expire" and "Delete…" 20 px; the album's "edit" 19 px
    and drawn as plain text."""
    album = library.create_album(user, "Coast", Visibility.PRIVATE)
    pic = make_picture(user, album=album, title="Gull")
    links.get_or_create_short_link(pic.token, user, expires_at=timezone.now() + timedelta(days=2))
    page, errors = open_page(browser)
    sign_in(page, live_server)
    short = [(t, h) for t, h in page.eval_on_selector_all(".site-header nav a, .site-header nav button", HEIGHTS_JS) if h < TAP]
    assert short == []
    page.goto(live_server.url + "/links/")
    buttons = page.eval_on_selector_all("table.links button", HEIGHTS_JS)
    assert len(buttons) == 2 and all(h >= TAP for _, h in buttons), buttons
    page.goto(f"{live_server.url}/albums/{album.slug}/")
    edit = page.locator(".album-grid li a", has_text="dit").last
    assert edit.inner_text().strip().lower() == "edit"
    looks = edit.evaluate("""e => { const s = getComputedStyle(e), body = getComputedStyle(document.body);
        return {height: e.getBoundingClientRect().height, link: s.textDecorationLine.includes('underline') || s.color !== body.color,
                button: s.backgroundColor !== 'rgba(0, 0, 0, 0)'}; }""")
    assert looks["height"] >= TAP and (looks["link"] or looks["button"]), looks
    assert errors == []


def test_the_desktop_header_is_not_made_taller(browser, live_server, user):
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    sign_in(page, live_server)
    heights = page.eval_on_selector_all(".site-header nav a, .site-header nav button", HEIGHTS_JS)
    header = box(page, ".site-header")
    context.close()
    assert all(h <= 34 for _, h in heights), heights
    assert header["height"] <= 60, header


# 4. similar cards --------------------------------------------------------------------------
def test_a_long_title_does_not_hide_the_similarity_score(browser, live_server, user, make_picture):
    """Title and score were one ellipsised line: a long title cut the score off."""
    long_title = "A very long title of a picture taken on the harbour wall at dusk in late November"
    seen = make_picture(user, title="Harbour")
    other = make_picture(user, title=long_title)
    store_vector(seen, unit(1))
    store_vector(other, unit(1))
    page, errors = open_page(browser)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/p/{seen.pk}/")
    cards = page.locator("ul.similar li")
    assert cards.count() >= 1
    scores = cards.first.evaluate(r"""li => {
      const out = [], walker = document.createTreeWalker(li, NodeFilter.SHOW_TEXT), card = li.getBoundingClientRect();
      while (walker.nextNode()) {
        const node = walker.currentNode, m = /\d\.\d\d/.exec(node.nodeValue);
        if (!m) continue;
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const r = range.getBoundingClientRect(), clip = node.parentElement.getBoundingClientRect();
        out.push({score: m[0], visible: r.width > 0 && r.right <= Math.min(card.right, clip.right) + 0.5 && r.left >= card.left - 0.5});
      }
      return out;
    }""")
    assert scores == [{"score": "1.00", "visible": True}], scores
    assert errors == []


# 5. images without a size ------------------------------------------------------------------
def test_confirm_delete_thumbnails_keep_their_place_before_they_load(browser, live_server, user, make_picture):
    """img.thumb had no width/height: until (or unless) it loaded, the page below it jumped."""
    pic = make_picture(user, title="Gull")  # 64x48
    anonymous = make_picture(None, title="Tern")
    EncodeJob.objects.create(status=JobStatus.DONE, picture=anonymous, deletion_digest=deletion_digest("k" * 32))
    page, errors = open_page(browser)
    page.route("**/t/**", lambda route: route.abort())  # a thumbnail that never comes
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/p/{pic.pk}/")
    with page.expect_navigation():
        page.click("form.picture-delete button")
    for where in ("picture", "upload"):
        if where == "upload":
            page.goto(f"{live_server.url}/delete/{'k' * 32}/")
        thumb = box(page, "img.thumb")
        assert thumb["width"] > 100 and abs(thumb["height"] - thumb["width"] * 48 / 64) <= 2, (where, thumb)
    assert errors == []


FILL_JS = """(picture) => {
  const li = document.getElementById('result-tpl').content.firstElementChild.cloneNode(true);
  document.getElementById('results').prepend(li);
  window.emmmResultCard.fill(li, {picture: picture}, {original: null, kind: 'vae'});
  const r = li.querySelector('.preview').getBoundingClientRect();  // its picture is held back: not loaded
  return [r.width, r.height];
}"""
LOADED_JS = """() => { const img = document.querySelector('.result .preview');
  return img.complete && img.naturalWidth > 0 ? [img.getBoundingClientRect().width, img.getBoundingClientRect().height] : null; }"""


@pytest.mark.parametrize("size", [(64, 48), (600, 400), (300, 900)], ids=["small", "wide", "tall"])
def test_the_upload_card_preview_keeps_its_place_before_it_loads(browser, live_server, png_bytes, size):
    """img.preview was 0 px tall until the token URL's picture came: the card jumped under the reader."""
    page, errors = open_page(browser)
    held = []
    page.route("**/i/**", lambda route: held.append(route))
    page.goto(live_server.url + "/")
    before = page.evaluate(FILL_JS, picture_json(live_server, *size))
    page.wait_for_timeout(200)
    assert len(held) == 1
    held[0].fulfill(status=200, headers={"Content-Type": "image/png"}, body=png_bytes(*size))
    after = page.wait_for_function(LOADED_JS).json_value()
    assert after[1] > 40 and abs(before[0] - after[0]) <= 1 and abs(before[1] - after[1]) <= 1, (before, after)
    assert errors == []


# 7. a refused upload keeps its title -------------------------------------------------------
def upload(page, live_server, tmp_path, png_bytes, title="my holiday title"):
    image = tmp_path / "p.png"
    image.write_bytes(png_bytes(64, 48, seed=1))
    page.goto(live_server.url + "/")
    page.set_input_files("#images", str(image))
    page.fill("input[name=title]", title)
    page.click("#upload-form button[type=submit]")


def test_a_refused_upload_keeps_the_title_typed(browser, live_server, png_bytes, tmp_path):
    """The title was cleared as the upload was sent: a refusal lost it."""
    page, errors = open_page(browser)
    page.route("**/api/v1/images", lambda route: fulfill_json(
        route, 400, {"error": {"status": 400, "code": "invalid", "message": "This file is not an image."}}))
    upload(page, live_server, tmp_path, png_bytes)
    page.wait_for_selector(".result .status.error")
    assert page.input_value("input[name=title]") == "my holiday title" and errors == []


def test_an_accepted_upload_clears_the_title(browser, live_server, png_bytes, tmp_path):
    page, errors = open_page(browser)
    page.route("**/api/v1/images", lambda route: fulfill_json(route, 202, job_json(live_server)))
    page.route("**/api/v1/jobs/*", lambda route: fulfill_json(route, 200, job_json(live_server)))
    upload(page, live_server, tmp_path, png_bytes)
    page.wait_for_selector(".result .status:text-is('queued')")
    assert page.input_value("input[name=title]") == "" and errors == []


# 8. input edges ----------------------------------------------------------------------------
BORDER_CONTRAST_JS = r"""(selector) => {
  const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = rgb(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const behind = el => { for (let e = el.parentElement; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor, v = rgb(c);
                         if (v.length === 3 || v[3] > 0.5) return c; } return getComputedStyle(document.documentElement).backgroundColor; };
  return [...document.querySelectorAll(selector)].map(el => {
    const edge = getComputedStyle(el).borderTopColor, a = lum(edge), b = lum(behind(el)), inside = lum(getComputedStyle(el).backgroundColor);
    const ratio = Math.min((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), (Math.max(a, inside) + 0.05) / (Math.min(a, inside) + 0.05));
    return [el.name || el.tagName, +ratio.toFixed(2)];
  });
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_input_edges_have_3_to_1_contrast(browser, live_server, scheme):
    """--border (#d6d9df on white: 1.41:1; #363b46 on #1e2128: 1.44:1) drew every field's edge."""
    page, errors = open_page(browser, scheme)
    found = []
    for path, selector in (("/", "#upload-form input[name=title]"), ("/search/", "#search-form input[name=q], #search-form select"),
                           ("/accounts/login/", "main input[name=username], main input[name=password]")):
        page.goto(live_server.url + path)
        found += page.evaluate(BORDER_CONTRAST_JS, selector)
    assert len(found) == 5 and all(ratio >= 3 for _, ratio in found), found
    assert errors == []


# 9. the AVIF retry's card ------------------------------------------------------------------
def test_the_avif_retry_card_says_avif_and_the_used_button_looks_used(browser, live_server, png_bytes, tmp_path):
    """Both cards were "p.png: done"; the retry button, aria-disabled, looked as active as before."""
    page, errors = open_page(browser)
    page.route("**/api/v1/images", lambda route: fulfill_json(route, 202, job_json(live_server)))
    page.route("**/api/v1/jobs/*", lambda route: fulfill_json(route, 200, job_json(live_server, "done", picture=picture_json(live_server))))
    page.route("**/i/**", lambda route: route.abort())
    page.route("**/s/**", lambda route: route.abort())
    upload(page, live_server, tmp_path, png_bytes, title="")
    retry = page.locator(".result .retry-avif")
    retry.wait_for()
    style = "b => { const s = getComputedStyle(b); return [s.backgroundColor, s.color]; }"
    active = retry.evaluate(style)
    retry.click()
    page.wait_for_function("() => document.querySelectorAll('.result').length === 2")
    assert page.locator(".result .name").all_inner_texts() == ["p.png (AVIF):", "p.png:"]
    used = page.locator(".result .retry-avif[aria-disabled=true]")
    assert used.count() == 1 and used.evaluate(style) != active
    assert errors == []
