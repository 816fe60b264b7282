"""The upload page's scripts when things go wrong, in headless Chromium (Debian's, through
Playwright): a job that answers 404, 429 or 503 while polled (the answers are made by
``page.route``), a damaged local history, pictures deleted since they were remembered, and a
refused short-link form on the picture page that must give back the expiry typed."""
from __future__ import annotations

from datetime import date

import json
import time

import pytest
from playwright.sync_api import expect

from imagehost.models import ShortLink
from imagehost.services import links

from .chromium import allow_sync_orm_beside_playwright, browser  # noqa: F401 (fixtures)

YEAR = date.today().year + 5  # a future expiry in every year this suite runs (January: no DST)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
HISTORY = "emmm.recentUploads"
PASSWORD = "correct-horse-battery"


def upload_with_polls_answered(browser, live_server, png_bytes, tmp_path, answer):
    """Upload one file; every GET of its job is answered by ``answer(route, n)``. Returns the
    page, the times of the polls and the page's script errors."""
    page = browser.new_context().new_page()
    errors, polls = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def handle(route, request):
        polls.append(time.monotonic())
        answer(route, len(polls))

    page.route("**/api/v1/jobs/*", handle)
    page.goto(live_server.url + "/")
    image = tmp_path / "p.png"
    image.write_bytes(png_bytes(64, 48, seed=1))
    page.set_input_files("#images", str(image))
    page.click("button[type=submit]")
    page.wait_for_selector(".result .status:not(:text('uploading'))")
    return page, polls, errors


def error_answer(status: int, headers: dict | None = None):
    def answer(route, n):
        body = {"error": {"status": status, "code": "x", "message": "refused"}}
        route.fulfill(status=status, headers={"Content-Type": "application/json", **(headers or {})}, body=json.dumps(body))
    return answer


def test_a_job_that_answers_404_stops_the_polling_and_says_so(browser, live_server, png_bytes, tmp_path):
    """It showed "queued" for ever and asked every 3 s (the error body was read as a job)."""
    page, polls, errors = upload_with_polls_answered(browser, live_server, png_bytes, tmp_path, error_answer(404))
    page.wait_for_selector(".result .status:text('this upload no longer exists')")
    asked = len(polls)
    page.wait_for_timeout(4000)
    assert len(polls) == asked and errors == []


def test_polling_waits_as_long_as_retry_after_says(browser, live_server, png_bytes, tmp_path):
    """A 429 with Retry-After: 60 was asked again 7 times in 12 s."""
    page, polls, errors = upload_with_polls_answered(
        browser, live_server, png_bytes, tmp_path, error_answer(429, {"Retry-After": "60"})
    )
    page.wait_for_selector(".result .eta:text('checking again in 60 s')")
    page.wait_for_timeout(4000)
    assert len(polls) == 1 and errors == []


def test_a_busy_server_keeps_the_last_status_and_says_it_is_busy(browser, live_server, png_bytes, tmp_path):
    """A 503 while encoding turned "encoding" into "queued" and cleared the estimate, silently."""
    def answer(route, n):
        if n <= 2:
            job = {"id": "x", "status": "running", "picture": None, "worker": None,
                   "queue": {"ahead": 0, "position": 0, "estimate_s": 20}}
            route.fulfill(status=200, headers={"Content-Type": "application/json"}, body=json.dumps(job))
        else:
            error_answer(503, {"Retry-After": "5"})(route, n)

    page, polls, errors = upload_with_polls_answered(browser, live_server, png_bytes, tmp_path, answer)
    page.wait_for_selector(".result .eta:text('the server is busy')")
    assert page.inner_text(".result .status") == "encoding" and errors == []


def history_page(browser, live_server, stored: list):
    page = browser.new_context().new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.url + "/")
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [HISTORY, json.dumps(stored)])
    page.reload()
    return page, errors


def test_a_damaged_history_entry_is_dropped_not_fatal(browser, live_server, token_pool):
    """One null entry stopped the history script for good: nothing shown, nothing remembered."""
    link = links.get_or_create_short_link(token_pool(1).token, None)
    good = {"job": "job-1", "status_url": None, "title": "kept",
            "picture": {"short_url": f"{live_server.url}/s/{link.slug}", "token_url": None, "title": "kept", "width": 64, "height": 48}}
    page, errors = history_page(browser, live_server, [None, "text", {"job": 7}, {"job": "j", "picture": None}, good])
    page.wait_for_selector("#history:not([hidden]) .history-item")
    assert page.locator("#history-list li").count() == 1 and "kept · 64×48" in page.inner_text("#history-list")
    assert errors == []
    assert [e["job"] for e in json.loads(page.evaluate(f"localStorage.getItem('{HISTORY}')"))] == ["job-1"]
    page.click("#history-clear")
    assert page.evaluate(f"localStorage.getItem('{HISTORY}')") is None


def test_the_history_forgets_pictures_deleted_since(browser, live_server, make_picture):
    """A picture deleted (by its deletion link) stayed listed, its thumbnail a 404."""
    from imagehost.models import EncodeJob, JobStatus

    kept, deleted = make_picture(None, title="kept"), make_picture(None, title="deleted")
    jobs = {pic.title: EncodeJob.objects.create(status=JobStatus.DONE, picture=pic) for pic in (kept, deleted)}
    stored = [{"job": str(job.pk), "status_url": f"{live_server.url}/api/v1/jobs/{job.pk}", "title": title,
               "picture": {"short_url": None, "token_url": f"{live_server.url}/i/{job.picture.token}", "title": title,
                           "width": 64, "height": 48}} for title, job in jobs.items()]
    deleted.delete()  # its job now answers done with no picture
    page, errors = history_page(browser, live_server, stored)
    page.wait_for_function("() => document.querySelectorAll('#history-list li').length === 1")
    assert "kept" in page.inner_text("#history-list") and "deleted" not in page.inner_text("#history-list")
    assert errors == []


def test_a_refused_short_link_form_gives_back_the_expiry_typed(browser, live_server, user, other_user, make_picture):
    """The script sends the expiry as an instant; the refused form gave that back to a
    datetime-local field, which cannot show it: the expiry came back empty, and a second try
    made a link that never expires."""
    pic = make_picture(owner=user, title="Pemaquid")
    links.get_or_create_short_link(make_picture(other_user).token, other_user, slug="taken")
    page = browser.new_context(locale="en-US", timezone_id="America/New_York").new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/library/")
    page.goto(f"{live_server.url}/p/{pic.pk}/")
    page.fill(".add-short-link input[name=slug]", "taken")
    page.fill(".add-short-link input[name=expires_at]", f"{YEAR}-01-15T15:30")
    page.click(".add-short-link button")
    page.wait_for_selector(".add-short-link .form-error")
    expect(page.locator(".add-short-link input[name=expires_at]")).to_have_value(f"{YEAR}-01-15T15:30")  # localtime.js, deferred
    page.fill(".add-short-link input[name=slug]", "pemaquid")
    page.click(".add-short-link button")
    page.wait_for_selector('tr.short-link[data-slug="pemaquid"]')
    assert ShortLink.objects.get(slug="pemaquid").expires_at.isoformat() == f"{YEAR}-01-15T20:30:00+00:00"


@pytest.mark.parametrize("size, budget, coded_note", [((10, 6), "best", None), ((16, 4000), "chat", "coded at 16×")])
def test_the_card_says_coded_smaller_only_when_it_was(browser, live_server, png_bytes, tmp_path, size, budget, coded_note):
    """A side under 16 pixels is coded at 16 (larger: said "to fit the link budget"); a budget that
    shrinks only a strip's height was not said at all on the server-rendered page."""
    from imagehost.models import EncodeJob
    from imagehost.services import jobs

    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.url + "/")
    page.check(f"input[name=budget][value={budget}]")
    image = tmp_path / "p.png"
    image.write_bytes(png_bytes(*size))
    page.set_input_files("#images", str(image))
    page.click("button[type=submit]")
    page.wait_for_selector(".result .status:not(:text('uploading'))")
    jobs.run_encode_job(EncodeJob.objects.get().pk)
    page.wait_for_selector(".result .done:not([hidden])", timeout=30_000)
    facts = page.inner_text(".result .facts")
    assert f"Stored at its own size, {size[0]}×{size[1]}" in facts
    if coded_note:
        assert coded_note in facts and "to fit the link budget" in facts
    else:
        assert "coded at" not in facts
    assert errors == []
