"""Issue 11 in headless Chromium (Debian's, through Playwright): a custom slug on a picture,
its expiry in the viewer's time zone, and deleting a picture makes its links 404."""
from __future__ import annotations

from datetime import date

import pytest

from imagehost.services import links

from .chromium import allow_sync_orm_beside_playwright, browser  # noqa: F401 (fixtures)

YEAR = date.today().year + 5  # a future expiry in every year this suite runs (January: no DST)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


@pytest.fixture
def picture(user, make_picture, token_pool):
    pic = make_picture(owner=user, title="Pemaquid Point", token=token_pool(3).token)
    pic.automatic_link = links.get_or_create_short_link(pic.token, user)  # as every upload has
    return pic


def signed_in_page(browser, live_server, **context):
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/library/")
    return page


def test_custom_slug_on_a_picture_with_a_local_expiry(browser, live_server, picture):
    page = signed_in_page(browser, live_server, locale="en-US", timezone_id="America/New_York")
    page.goto(f"{live_server.url}/p/{picture.pk}/")
    page.fill(".add-short-link input[name=slug]", "pemaquid")
    assert "New_York" in page.inner_text(".add-short-link .zone-hint")
    page.fill(".add-short-link input[name=expires_at]", f"{YEAR}-01-15T15:30")  # the viewer's wall time
    page.click(".add-short-link button")
    page.wait_for_selector('tr.short-link[data-slug="pemaquid"]')
    assert page.locator(f'tr.short-link[data-slug="{picture.automatic_link.slug}"]').count() == 1  # both listed
    expiry = page.locator('tr.short-link[data-slug="pemaquid"] time.local-time')
    page.wait_for_function("() => document.querySelector('tr[data-slug=pemaquid] time').dataset.localised === '1'")
    assert expiry.get_attribute("datetime") == f"{YEAR}-01-15T20:30:00+00:00"  # 15:30 in New York (it was taken as UTC)
    assert expiry.inner_text() == f"Jan 15, {YEAR}, 3:30 PM"

    fresh = browser.new_context()
    response = fresh.new_page().goto(live_server.url + "/s/pemaquid")
    assert response.status == 200 and response.headers["content-type"] == "image/webp"
    fresh.close()

    page.click('tr.short-link[data-slug="pemaquid"] .expiry button')  # never expire
    page.wait_for_selector('tr.short-link[data-slug="pemaquid"] .expiry:has-text("never")')


def test_deleting_a_picture_makes_its_link_404(browser, live_server, picture):
    slug = picture.automatic_link.slug
    fresh = browser.new_context()
    assert fresh.new_page().goto(f"{live_server.url}/s/{slug}").status == 200
    page = signed_in_page(browser, live_server)
    page.goto(f"{live_server.url}/p/{picture.pk}/")
    page.click(".picture-delete button")
    page.wait_for_selector(".confirm-delete")  # asked first, without any script
    assert page.is_checked("input[name=links][value=delete]")  # deleting the links is the default
    page.click(".confirm-delete button.danger")
    page.wait_for_url("**/library/")
    assert "Picture deleted with its 1 short link" in page.inner_text(".messages")
    # the viewer who saw the image before (it is in that browser's cache) gets the 404 too:
    # /s/ answers are revalidated (no-cache), unlike a token URL's
    for url in (f"/s/{slug}", f"/s/{slug}/", f"/s/{slug}.png"):
        assert fresh.new_page().goto(live_server.url + url).status == 404
    fresh.close()
