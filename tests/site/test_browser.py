"""Headless Chromium (Debian's) through Playwright, against a live server + real worker."""
from __future__ import annotations

import time

import pytest

from .chromium import allow_sync_orm_beside_playwright, chromium_path  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _image_renders(page) -> bool:
    return page.evaluate("() => { const i = document.querySelector('img'); return !!i && i.complete && i.naturalWidth > 0; }")


def test_anonymous_upload_then_links_render_in_a_fresh_context(live_server, celery_worker, png_bytes, tmp_path):
    from playwright.sync_api import sync_playwright

    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes(64, 48, seed=11))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        try:
            # 1. Without JavaScript: the plain form and the result page.
            ctx = browser.new_context(java_script_enabled=False)
            page = ctx.new_page()
            page.goto(live_server.url + "/")
            page.set_input_files("#images", str(image))
            page.click("button[type=submit]")
            page.wait_for_url("**/jobs/?ids=*")
            deadline = time.monotonic() + 120  # no automatic reload: the user checks again
            while not page.locator(".result[data-status=done]").count():
                assert time.monotonic() < deadline, page.inner_text("main")
                page.wait_for_timeout(1000)
                page.click("#check-again")
                page.wait_for_load_state()
            token_url = page.input_value(".token-url")
            short_url = page.input_value(".short-url")
            assert "/i/" in token_url and "/s/" in short_url
            ctx.close()

            # 2. A fresh context opens both links and sees the image.
            fresh = browser.new_context()
            page = fresh.new_page()
            for url in (token_url, short_url):
                response = page.goto(url)
                assert response.status == 200
                assert response.headers["content-type"] == "image/webp"
                page.wait_for_function("() => document.images.length && document.images[0].complete")
                assert _image_renders(page)
            page.goto(short_url + "/")
            page.wait_for_function("() => document.images.length && document.images[0].complete")
            assert _image_renders(page)
            fresh.close()

            # 3. With JavaScript: per-file status ends in "done" with a working preview.
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(live_server.url + "/")
            page.set_input_files("#images", str(image))
            page.click("button[type=submit]")
            page.wait_for_selector(".result .done:not([hidden])", timeout=120_000)
            assert page.locator(".result .status").inner_text() == "done"
            page.wait_for_function("() => document.querySelector('.result .preview').naturalWidth > 0")
            assert page.input_value(".result .token-url") == token_url  # same image, same token
            ctx.close()
        finally:
            browser.close()
