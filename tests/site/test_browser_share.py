"""Issue 11 (part B) in headless Chromium (Debian's), against a live server and a real worker:
a budgeted upload → result card → copy → QR code → share page with OpenGraph in a fresh
context; the anonymous history surviving a reload; dark mode; no horizontal scroll at 390 px.

``EMMM_SCREENSHOT_DIR=docs`` also saves the phone-width screenshots the README shows
(optimised to a palette PNG).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import codec
from imagehost.models import EncodeJob, Visibility
from imagehost.services import library, links

from .chromium import allow_sync_orm_beside_playwright, browser  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("EMMM_SCREENSHOT_DIR")
    if not folder:
        return
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    palette = image.quantize(colors=96, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(Path(folder) / name, optimize=True)


def test_budget_upload_card_copy_qr_share_page_and_history(live_server, celery_worker, png_bytes, tmp_path, browser):
    image = tmp_path / "harbour.png"
    image.write_bytes(png_bytes(600, 450, seed=5))
    stored = "×".join(map(str, codec.stored_size(600, 450)))
    ctx = browser.new_context(viewport=PHONE, permissions=["clipboard-read", "clipboard-write"])
    page = ctx.new_page()
    script_errors: list = []
    page.on("pageerror", lambda error: script_errors.append(error))
    page.goto(live_server.url + "/")
    page.check("input[name=budget][value=proxy]")
    page.fill("input[name=title]", "Harbour at dusk")
    page.set_input_files("#images", str(image))
    page.wait_for_selector("#planned li")
    assert f"600×450 → stored at {stored}" in page.inner_text("#planned")
    page.click("button[type=submit]")
    page.wait_for_selector(".result .done:not([hidden])", timeout=180_000)
    assert page.inner_text(".result .status") == "done"

    job = EncodeJob.objects.get()
    assert job.max_chars == 8000 - len(live_server.url + "/i/")  # the chosen budget reached the encoder
    assert f"Stored at {stored} from your 600×450" in page.inner_text(".result .facts")
    token_url = page.input_value(".result .token-url")
    assert len(token_url) <= 8000 and f"link: {len(token_url):,}" in page.inner_text(".result .facts")
    assert "Common proxies and servers (8,192): fits" in page.inner_text(".result .fits")
    assert "2026-32-01" in page.inner_text(".result .quality-note")
    assert page.is_visible(".result .retry-avif")
    page.wait_for_function("() => document.querySelector('.result .preview').naturalWidth > 0")

    short_url = page.input_value(".result .short-url")
    assert short_url.startswith(live_server.url + "/s/")
    page.click(".result .copy-row:has(.short-url) button.copy")
    page.wait_for_selector(".result .copy-row:has(.short-url) button.copy:text('Copied')")  # for 2 s
    assert page.evaluate("() => navigator.clipboard.readText()") == short_url

    page.click(".result details.share summary")
    page.wait_for_function("() => document.querySelector('.result .qr-img').naturalWidth > 0")
    assert page.get_attribute(".result .qr-img", "src") == short_url + "/qr.svg"
    markdown = page.input_value(".result .snippets input[id$=-markdown]")
    assert markdown == f"[![Harbour at dusk]({short_url})]({short_url}/)"
    assert _overflow(page) == 0
    page.evaluate("() => document.querySelector('.result').scrollIntoView()")
    _screenshot(page, "screenshot-upload-390.png")

    # The anonymous history survives a reload, and can be cleared.
    page.reload()
    page.wait_for_selector("#history-list .history-link")
    assert page.input_value("#history-list .history-link") == short_url
    assert "Harbour at dusk" in page.inner_text("#history-list")
    page.reload()
    page.wait_for_selector("#history-list .history-link")
    page.click("#history-clear")
    assert page.is_hidden("#history")
    page.reload()
    assert page.is_hidden("#history") and page.locator("#history-list li").count() == 0
    assert script_errors == []
    ctx.close()

    # A fresh context (no cookies, no storage) opens the share page: picture and OpenGraph tags.
    # An anonymous upload's link is the token's shared anonymous link (whoever uploads or shortens
    # the same file gets it): its page shows no uploader's title.
    fresh = browser.new_context(viewport=PHONE)
    page = fresh.new_page()
    assert page.goto(short_url + "/").status == 200
    assert page.get_attribute('meta[property="og:title"]', "content") == "Image on emmmbedding"
    og_image = page.get_attribute('meta[property="og:image"]', "content")
    assert og_image == short_url + ".png"
    page.wait_for_function("() => document.images.length && document.images[0].complete && document.images[0].naturalWidth > 0")
    assert page.request.get(og_image).headers["content-type"] == "image/png"
    qr = page.request.get(short_url + "/qr.svg")
    assert qr.status == 200 and qr.headers["content-type"] == "image/svg+xml"
    assert _overflow(page) == 0
    _screenshot(page, "screenshot-share-390.png")
    fresh.close()


def test_dark_mode_follows_the_color_scheme(live_server, browser):
    colours = {}
    for scheme in ("light", "dark"):
        ctx = browser.new_context(color_scheme=scheme, viewport=PHONE)
        page = ctx.new_page()
        page.goto(live_server.url + "/")
        colours[scheme] = page.evaluate(
            "() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color,"
            " getComputedStyle(document.querySelector('#upload-form')).backgroundColor]"
        )
        if scheme == "dark":
            _screenshot(page, "screenshot-dark-390.png")
        ctx.close()
    assert colours["light"] == ["rgb(246, 247, 249)", "rgb(29, 29, 31)", "rgb(255, 255, 255)"]
    assert colours["dark"] == ["rgb(20, 22, 27)", "rgb(231, 233, 238)", "rgb(30, 33, 40)"]


def test_pages_fit_390_px_without_horizontal_scroll(live_server, browser, django_user_model, make_picture):
    user = django_user_model.objects.create_user("phone-user", password="a-long-pass-9876")
    album = library.create_album(user, "A rather long album title that has to wrap on a phone", Visibility.PUBLIC)
    pictures = [make_picture(user, album=album, title=f"picture {i} with a long title") for i in range(3)]
    link = links.get_or_create_short_link(pictures[0].token, user)
    empty = library.create_album(user, "Empty", Visibility.PUBLIC)
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    script_errors: list = []
    page.on("pageerror", lambda error: script_errors.append(error))
    urls = ["/", "/albums/public/", f"/albums/{album.slug}/", f"/albums/{empty.slug}/", f"/s/{link.slug}/",
            "/search/", "/accounts/login/", "/accounts/signup/", "/s/no-such-link/"]
    for url in urls:
        page.goto(live_server.url + url)
        assert _overflow(page) == 0, url
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", "phone-user")
    page.fill("input[name=password]", "a-long-pass-9876")
    page.click("main button[type=submit], main form button")
    for url in ("/", "/library/", f"/p/{pictures[0].pk}/", "/albums/", f"/albums/{album.slug}/", "/api/tokens/"):
        page.goto(live_server.url + url)
        assert _overflow(page) == 0, url
    assert script_errors == []
    ctx.close()
