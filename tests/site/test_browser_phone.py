"""Pages on a phone (360 px, touch) in light and dark, in headless Chromium: every visible text
readable (WCAG AA contrast), form errors that look like errors, the share page's picture at the
full width, right-to-left captions that show their beginning, copy fields with names."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from imagehost.models import Visibility
from imagehost.services import library, links

from .chromium import allow_sync_orm_beside_playwright, browser  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}
PASSWORD = "correct-horse-battery"

#: Every visible text node's contrast against the first opaque background behind it, below the
#: WCAG AA minimum (4.5:1; 3:1 for large text): [text, colour, background, ratio].
LOW_CONTRAST_JS = r"""() => {
  const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = rgb(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = el => { for (let e = el; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor, v = rgb(c);
                             if (v.length === 3 || v[3] > 0.5) return c; } return getComputedStyle(document.documentElement).backgroundColor; };
  const low = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.nodeValue.trim() || seen.has(el) || el.closest("[hidden], .visually-hidden, script, style, option")) continue;
    seen.add(el);
    const box = el.getBoundingClientRect(); if (!box.width || !box.height) continue;
    const style = getComputedStyle(el), fg = style.color, bg = background(el), a = lum(fg), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push([el.innerText.trim().slice(0, 40), fg, bg, +ratio.toFixed(2)]);
  }
  return low;
}"""


def phone(browser, scheme: str = "light"):
    context = browser.new_context(viewport=PHONE, color_scheme=scheme, is_mobile=True, has_touch=True)
    return context, context.new_page()


def sign_in(page, live_server, user) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_is_readable(browser, live_server, user, make_picture, token_pool, scheme):
    """Dark mode: white on the light-red delete buttons was 2.77:1, the links table's
    "Delete…" 2.80:1 and "never expire" 3.50:1 (colours fixed for light mode only)."""
    pic = make_picture(user, title="Harbour", token=token_pool(0).token)
    links.get_or_create_short_link(pic.token, user, expires_at=timezone.now() + timedelta(days=2))
    context, page = phone(browser, scheme)
    sign_in(page, live_server, user)
    low = {}
    for path in (f"/p/{pic.pk}/", "/links/", "/library/", "/", "/albums/public/", "/accounts/delete/"):
        page.goto(live_server.url + path)
        found = page.evaluate(LOW_CONTRAST_JS)
        if found:
            low[path] = found
    page.goto(live_server.url + f"/p/{pic.pk}/")
    page.click("form.picture-delete button.danger")
    page.wait_for_selector(".confirm-delete")
    if found := page.evaluate(LOW_CONTRAST_JS):
        low["confirm delete"] = found
    context.close()
    assert low == {}


def test_form_errors_look_like_errors(browser, live_server):
    """Django's error list ("The two password fields didn't match.") had the body's colour and
    sat among the help texts' bullets; the field in error looked like the others."""
    context, page = phone(browser, "dark")
    page.goto(live_server.url + "/accounts/signup/")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD + "x")
    page.click("main button[type=submit]")
    page.wait_for_selector(".errorlist")
    page.wait_for_load_state("load")  # site.css applied before the computed styles are read
    colours = page.evaluate("""() => ({error: getComputedStyle(document.querySelector('.errorlist li')).color,
        body: getComputedStyle(document.body).color, bullet: getComputedStyle(document.querySelector('.errorlist')).listStyleType,
        invalid: getComputedStyle(document.querySelector('[aria-invalid=true]')).borderTopColor,
        valid: getComputedStyle(document.querySelector('input[name=username]')).borderTopColor,
        danger: getComputedStyle(document.querySelector('.errorlist li')).getPropertyValue('--danger').trim()})""")
    context.close()
    assert colours["error"] != colours["body"] and colours["bullet"] == "none", colours
    assert colours["invalid"] == colours["error"] != colours["valid"], colours


def test_the_share_page_shows_the_picture_at_the_full_width(browser, live_server, make_picture, token_pool):
    """The browser's default <figure> margin took 40 px off each side of the picture."""
    pool = token_pool(0)
    pic = make_picture(None, title="Harbour", token=pool.token)
    pic.width, pic.height = pool.width, pool.height
    pic.save()
    slug = links.get_or_create_short_link(pic.token).slug
    context, page = phone(browser)
    page.goto(f"{live_server.url}/s/{slug}/")
    margins = page.evaluate("() => { const f = getComputedStyle(document.querySelector('figure.shared')); return [f.marginLeft, f.marginRight]; }")
    context.close()
    assert margins == ["0px", "0px"]


def test_right_to_left_captions_show_their_beginning(browser, live_server, user, make_picture):
    """An ellipsised Hebrew title showed its last words: its first letter was drawn outside the caption."""
    title = "חופשה בים המלח עם כל המשפחה והחברים הטובים שלנו"
    album = library.create_album(user, title, Visibility.PUBLIC)
    make_picture(user, album=album, title=title)
    context, page = phone(browser)
    found = {}
    for path, selector in (("/albums/public/", ".album-covers .caption"), (f"/albums/{album.slug}/", ".album-grid span")):
        page.goto(live_server.url + path)
        found[path] = page.evaluate("""(selector) => { const span = document.querySelector(selector), range = document.createRange();
            range.setStart(span.firstChild, 0); range.setEnd(span.firstChild, 1);
            const first = range.getBoundingClientRect(), box = span.getBoundingClientRect();
            return box.left <= first.left && first.right <= box.right + 1; }""", selector)
    context.close()
    assert found == {"/albums/public/": True, f"/albums/{album.slug}/": True}


def test_copy_fields_have_names_and_the_new_api_token_a_copy_button(browser, live_server, user, make_picture):
    """The new API token ("copy it now: it will not be shown again") had no Copy button and no
    label; the recent-uploads list's link fields had no accessible name."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    entry = {"job": "job-1", "status_url": None, "title": "kept",
             "picture": {"short_url": f"{live_server.url}/s/abc", "token_url": None, "title": "kept", "width": 64, "height": 48}}
    page.goto(live_server.url + "/")
    page.evaluate("(e) => localStorage.setItem('emmm.recentUploads', JSON.stringify([e]))", entry)
    page.reload()
    page.wait_for_selector("#history-list .history-link")
    assert page.get_attribute("#history-list .history-link", "aria-label") == "Short link of kept"
    sign_in(page, live_server, user)
    page.goto(live_server.url + "/api/tokens/")
    page.fill("input[name=name]", "phone")
    page.click("button:has-text('Create token')")
    page.wait_for_selector("#new-token")
    assert page.evaluate("() => document.querySelector('#new-token').labels.length") == 1
    page.click("button[data-copy=new-token]")
    page.wait_for_selector("button[data-copy=new-token]:text('Copied')")  # after the clipboard's promise
    assert page.evaluate("() => navigator.clipboard.readText()") == page.input_value("#new-token")
    context.close()
