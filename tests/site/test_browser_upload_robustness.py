"""The upload page's scripts (and the other small scripts beside them) when answers are refused,
lost or late, in headless Chromium (Debian's, through Playwright). Most answers are made by
``page.route``, so no test waits for the real thing: the deletion link of an upload, uploads
refused for a moment (429, 503) or by a stale CSRF token, a copy the browser refuses, a picture
with no short link, notices that no longer apply, a lost connection while polling, an expiry
corrected before a second submit, a pending short link behind a proxy's 502, the keyboard focus
in the recent-uploads list, a file dropped beside the drop zone and a pasted image's title."""
from __future__ import annotations

from datetime import date

import json
import re

import pytest

from .chromium import allow_sync_orm_beside_playwright, browser, sign_in  # noqa: F401 (fixtures)

YEAR = date.today().year + 5  # a future expiry in every year this suite runs (January: no DST)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
HISTORY = "emmm.recentUploads"


def new_page(browser, **context):
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def image_file(tmp_path, png_bytes, name="p.png", seed=1) -> str:
    path = tmp_path / name
    path.write_bytes(png_bytes(64, 48, seed=seed))
    return str(path)


def job_json(status="queued", **fields):
    job = {"id": "x", "status": status, "error": "", "status_url": "/api/v1/jobs/x", "picture": None, "worker": None,
           "duplicate": None, "similarity_pending": False, "queue": None, "coded": None, "short_url": None}
    job.update(fields)
    return job


def picture_json(live_server, title="t", short=True):
    return {"id": 1, "title": title, "album": None, "token": "abc", "token_url": live_server.url + "/i/abc",
            "short_url": live_server.url + "/s/abcdef" if short else None, "width": 64, "height": 48, "chars": 3,
            "model": "taef2", "taken_down": False, "created": "2025-01-01T00:00:00Z"}


def fulfill_json(route, status, body, headers=None):
    route.fulfill(status=status, headers={"Content-Type": "application/json", **(headers or {})}, body=json.dumps(body))


def refusal(status, message, headers=None):
    return lambda route, request: fulfill_json(route, status, {"error": {"status": status, "code": "x", "message": message}}, headers)


def upload(page, live_server, tmp_path, png_bytes):
    page.goto(live_server.url + "/")
    page.set_input_files("#images", image_file(tmp_path, png_bytes))
    page.click("main button[type=submit]")


def upload_with_polls_answered(browser, live_server, png_bytes, tmp_path, answer, accepted=None):
    """Upload one file (the real POST, or ``accepted`` as its 202 answer); every GET of its job is
    answered by ``answer(route, n)``. Returns the page, the number of polls and the script errors."""
    page, errors = new_page(browser)
    polls = []

    def handle(route, request):
        polls.append(request.url)
        answer(route, len(polls))

    page.route("**/api/v1/jobs/*", handle)
    if accepted is not None:
        page.route("**/api/v1/images", lambda route, request: fulfill_json(route, 202, accepted))
    upload(page, live_server, tmp_path, png_bytes)
    page.wait_for_selector(".result .status:not(:text('uploading'))")
    return page, polls, errors


# 1 ------------------------------------------------------------------------------------------
def test_the_deletion_link_is_shown_at_once_and_kept_in_the_history(browser, live_server, png_bytes, tmp_path):
    """The upload's answer is the only place its deletion link is given; the page dropped it."""
    page, errors = new_page(browser)
    page.goto(live_server.url + "/")
    with page.expect_response("**/api/v1/images") as answer:
        page.set_input_files("#images", image_file(tmp_path, png_bytes))
        page.click("main button[type=submit]")
    deletion_url = answer.value.json()["deletion_url"]
    row = page.locator(".result .copy-row:has(.deletion-url)")
    row.wait_for()  # at once: the job is still queued (no worker runs here)
    assert page.inner_text(".result .status") == "queued"
    assert row.locator("input").input_value() == deletion_url
    assert "Delete link (secret: anyone who has it can delete this upload)" in row.locator("label").inner_text()
    assert row.locator("label").get_attribute("for") == row.locator("input").get_attribute("id")
    assert row.locator("button.copy").get_attribute("data-copy") == row.locator("input").get_attribute("id")
    stored = json.loads(page.evaluate(f"localStorage.getItem('{HISTORY}')"))
    assert stored[0]["deletion_url"] == deletion_url
    page.reload()
    page.wait_for_selector(f"#history-list a.history-delete[href='{deletion_url}']")
    assert errors == []


# 2 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status, said", [(429, "too many uploads at once"), (503, "the server is busy")])
def test_an_upload_refused_for_a_moment_is_sent_again_after_retry_after(browser, live_server, png_bytes, tmp_path, status, said):
    """A 429 or 503 to the upload was final ("error 429: ..."): the File was there to send again."""
    from imagehost.models import EncodeJob

    page, errors = new_page(browser)
    posts = []

    def handle(route, request):
        posts.append(re.sub(rb"-+WebKitFormBoundary\w+", b"", request.post_data_buffer))  # the same file, the same fields
        if len(posts) == 1:
            refusal(status, "Request was throttled.", {"Retry-After": "1"})(route, request)
        else:
            route.continue_()

    page.route("**/api/v1/images", handle)
    upload(page, live_server, tmp_path, png_bytes)
    page.wait_for_selector(f".result .status:text('waiting 1 s: {said}')")
    page.wait_for_selector(".result .status:text-is('queued')")
    assert len(posts) == 2 and posts[0] == posts[1]
    assert EncodeJob.objects.count() == 1 and errors == []


def test_an_upload_refused_every_time_stops_after_a_few_tries(browser, live_server, png_bytes, tmp_path):
    page, errors = new_page(browser)
    posts = []

    def handle(route, request):
        posts.append(1)
        refusal(429, "Request was throttled.", {"Retry-After": "1"})(route, request)

    page.route("**/api/v1/images", handle)
    upload(page, live_server, tmp_path, png_bytes)
    page.wait_for_selector(".result .status.error:text('error 429')", timeout=15_000)
    sent = len(posts)
    assert 2 <= sent <= 6
    page.wait_for_timeout(1200)  # longer than Retry-After: nothing more is sent
    assert len(posts) == sent and errors == []


# 3 ------------------------------------------------------------------------------------------
def test_an_upload_after_signing_in_in_another_tab_is_accepted(browser, live_server, user, png_bytes, tmp_path):
    """The CSRF token was read once at page load; signing in (elsewhere) rotates it: every upload a 403."""
    page, errors = new_page(browser)
    page.goto(live_server.url + "/")
    sign_in(page.context.new_page(), live_server)
    with page.expect_response("**/api/v1/images") as answer:
        page.set_input_files("#images", image_file(tmp_path, png_bytes))
        page.click("main button[type=submit]")
    assert answer.value.status == 202, answer.value.text()
    page.wait_for_selector(".result .status:text-is('queued')")
    assert errors == []


def test_a_csrf_refusal_says_to_reload_the_page(browser, live_server, png_bytes, tmp_path):
    page, errors = new_page(browser)
    page.route("**/api/v1/images", refusal(403, "CSRF Failed: CSRF cookie not set."))
    upload(page, live_server, tmp_path, png_bytes)
    page.wait_for_selector(".result .status.error:not(:text('uploading'))")
    assert "reload the page" in page.inner_text(".result .status")


# 4 ------------------------------------------------------------------------------------------
DONE_CARD = "() => document.querySelector('.result .done') && !document.querySelector('.result .done').hidden"


@pytest.mark.parametrize("refuse", [
    "navigator.clipboard.writeText = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));",
    "Object.defineProperty(navigator, 'clipboard', {value: undefined}); document.execCommand = () => false;",
], ids=["permission-denied", "execCommand-false"])
def test_a_refused_copy_says_so_on_the_button_and_selects_the_text(browser, live_server, png_bytes, tmp_path, refuse):
    """Only the 1x1 px #copy-status said "Copy failed"; execCommand's false was said "Copied"."""
    page, errors = new_page(browser)
    page.add_init_script(refuse)
    page.route("**/api/v1/jobs/*", lambda route, request: fulfill_json(route, 200, job_json("done", picture=picture_json(live_server))))
    upload(page, live_server, tmp_path, png_bytes)
    page.wait_for_function(DONE_CARD)
    button = page.locator(".result button.copy[data-field=short-url]")
    button.click()
    page.wait_for_function("b => b.textContent !== 'Copy'", arg=button.element_handle())
    assert button.inner_text() == "Copy failed"
    selected = page.evaluate("""() => { const el = document.activeElement;
        return el.classList.contains('short-url') && el.selectionStart === 0 && el.selectionEnd === el.value.length && el.value.length > 0; }""")
    assert selected, "the field's text is selected (and focused), so Ctrl+C copies it"
    assert errors == []


# 5 ------------------------------------------------------------------------------------------
def test_a_picture_without_a_short_link_shows_no_short_link_row(browser, live_server, png_bytes, tmp_path):
    """Its reserved link deleted while encoding: an empty "Short link" field whose Copy copied ""."""
    page, polls, errors = upload_with_polls_answered(
        browser, live_server, png_bytes, tmp_path,
        lambda route, n: fulfill_json(route, 200, job_json("done", picture=picture_json(live_server, short=False))))
    page.wait_for_function(DONE_CARD)
    assert page.is_hidden(".result .copy-row:has(.short-url)")
    assert page.is_visible(".result .copy-row:has(.token-url)") and errors == []


# 6 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("last, said", [
    (lambda route: fulfill_json(route, 200, job_json("failed", error="Gave up after 3 attempts.")), "failed"),
    (lambda route: fulfill_json(route, 404, {"error": {"status": 404, "code": "not_found", "message": "Not found."}}), "no longer exists"),
    (lambda route: fulfill_json(route, 200, job_json("done")), "deleted"),
], ids=["failed", "404", "deleted"])
def test_notices_that_no_longer_apply_are_cleared_when_the_job_ends(browser, live_server, png_bytes, tmp_path, last, said):
    """"No encoder is running; your upload is kept." stayed under "failed: ..."."""
    waiting = job_json("queued", worker={"code": "worker_unavailable", "message": "No encoder is running; your upload is kept."},
                       queue={"ahead": 0, "position": 1, "estimate_s": None})
    accepted = {**waiting, "warning": {"code": "queue_unavailable", "message": "Kept, but not queued yet."},
                "deletion_url": live_server.url + "/delete/secret/"}

    def answer(route, n):
        fulfill_json(route, 200, waiting) if n == 1 else last(route)

    page, polls, errors = upload_with_polls_answered(browser, live_server, png_bytes, tmp_path, answer, accepted=accepted)
    page.wait_for_selector(f".result .status:text('{said}')")
    assert page.is_hidden(".result .worker-notice") and page.is_hidden(".result .warning")
    assert page.is_hidden(".result .copy-row:has(.deletion-url)"), "nothing left to delete"
    assert page.inner_text(".result .eta") == "" and errors == []


# 7 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fail, said", [
    (lambda route: route.abort("connectionrefused"), "connection lost: checking again in 2 s"),
    (lambda route: route.fulfill(status=200, headers={"Content-Type": "text/html"}, body="<html>Sign in to the Wi-Fi</html>"),
     "the server answered an error: checking again in 2 s"),
    (lambda route: route.fulfill(status=502, headers={"Content-Type": "text/html"}, body="<h1>502 Bad Gateway</h1>"),
     "the server answered an error: checking again in 2 s"),
], ids=["unreachable", "html", "502"])
def test_a_lost_connection_is_said_and_the_card_recovers(browser, live_server, png_bytes, tmp_path, fail, said):
    """A refused connection kept "about 5 s left" on the card for ever."""
    def answer(route, n):
        if n == 1:
            fulfill_json(route, 200, job_json("running", queue={"ahead": 0, "position": 0, "estimate_s": 5}))
        elif n == 2:
            fail(route)
        else:
            fulfill_json(route, 200, job_json("done", picture=picture_json(live_server)))

    page, polls, errors = upload_with_polls_answered(browser, live_server, png_bytes, tmp_path, answer)
    page.wait_for_selector(f".result .eta:text('{said}')")
    assert page.inner_text(".result .status") == "encoding"
    page.wait_for_function(DONE_CARD)
    assert page.inner_text(".result .eta") == "" and errors == []


def test_a_long_outage_backs_off(browser, live_server, png_bytes, tmp_path):
    page, polls, errors = upload_with_polls_answered(browser, live_server, png_bytes, tmp_path,
                                                     lambda route, n: route.abort("connectionrefused"))
    page.wait_for_selector(".result .eta:text('checking again in 2 s')")
    page.wait_for_selector(".result .eta:text('checking again in 4 s')")
    assert errors == []


# 8 ------------------------------------------------------------------------------------------
SENT = """() => new Promise(resolve => {
    const form = document.querySelector('.add-short-link');
    form.addEventListener('submit', e => { e.preventDefault(); resolve(new FormData(form).getAll('expires_at')); }, {once: true});
    form.requestSubmit();
})"""


def test_a_corrected_or_cleared_expiry_is_what_is_sent(browser, live_server, user, make_picture):
    """The first submit took the field's name away: a second one sent the FIRST expiry again."""
    from imagehost.models import ShortLink

    pic = make_picture(owner=user, title="Pemaquid")
    page, errors = new_page(browser, locale="en-US", timezone_id="America/New_York")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/p/{pic.pk}/")
    field = ".add-short-link input[type=datetime-local]"
    page.fill(".add-short-link input[name=slug]", "mylink")
    page.fill(field, f"{YEAR}-01-15T15:30")
    assert page.evaluate(SENT) == [f"{YEAR}-01-15T20:30:00.000Z"]
    page.fill(field, f"{YEAR + 1}-02-20T10:00")
    assert page.evaluate(SENT) == [f"{YEAR + 1}-02-20T15:00:00.000Z"]
    page.fill(field, "")
    assert page.evaluate(SENT) == [""]
    page.fill(field, f"{YEAR}-01-15T15:30")
    page.evaluate(SENT)
    page.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")  # back (bfcache)
    assert page.evaluate("""() => { const f = document.querySelector('.add-short-link');
        return [f.querySelector('input[type=datetime-local]').name, f.querySelectorAll('input[type=hidden][name=expires_at]').length]; }""") == ["expires_at", 0]
    page.fill(field, f"{YEAR + 1}-02-20T10:00")
    page.click(".add-short-link button")
    page.wait_for_selector('tr.short-link[data-slug="mylink"]')
    assert ShortLink.objects.get(slug="mylink").expires_at.isoformat() == f"{YEAR + 1}-02-20T15:00:00+00:00"
    assert errors == []


# 9 ------------------------------------------------------------------------------------------
def test_a_pending_short_link_survives_one_bad_gateway(browser, live_server, user, token_pool):
    """One 502 (a proxy's, while the app restarts) reloaded the page onto the proxy's error page."""
    from imagehost.models import EncodeJob, JobStatus
    from imagehost.services import links

    job = EncodeJob.objects.create(owner=user, status=JobStatus.QUEUED, source=b"x")
    slug = links.reserve_short_link(job).slug
    page, errors = new_page(browser)
    heads = []

    def handle(route, request):
        if request.method == "HEAD":
            heads.append(1)
        # The first ask, and a page load before a second ask, meet the proxy's error page.
        if (request.method == "HEAD" and len(heads) == 1) or (request.resource_type == "document" and len(heads) == 1):
            return route.fulfill(status=502, headers={"Content-Type": "text/html"}, body="<h1>502 Bad Gateway</h1>")
        route.continue_()

    page.goto(f"{live_server.url}/s/{slug}/")
    page.route(f"**/s/{slug}**", handle)
    links.fill_reserved_links(job, token_pool(0).token)  # the worker ends the job (behind the outage)
    EncodeJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, source=None)
    page.wait_for_selector("main img", timeout=15_000)
    assert len(heads) == 2 and "502" not in page.inner_text("body") and errors == []


# 10 -----------------------------------------------------------------------------------------
def test_the_recent_uploads_list_keeps_keyboard_focus_while_uploads_are_accepted_and_finish(browser, live_server, png_bytes, tmp_path, make_picture):
    """Every change rebuilt the whole list: focus on one of its Copy buttons dropped to BODY."""
    from imagehost.models import EncodeJob, JobStatus
    from imagehost.services import links

    pic = make_picture(None, title="older")
    link = links.get_or_create_short_link(pic.token, None)
    job = EncodeJob.objects.create(status=JobStatus.DONE, picture=pic)
    status_url = f"{live_server.url}/api/v1/jobs/{job.pk}"
    stored = [{"job": str(job.pk), "status_url": status_url, "title": "older",
               "picture": {"short_url": f"{live_server.url}/s/{link.slug}", "token_url": None, "title": "older", "width": 64, "height": 48}}]
    page, errors = new_page(browser)
    page.goto(live_server.url + "/")
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [HISTORY, json.dumps(stored)])
    with page.expect_response(status_url):  # the page asks once about each finished upload
        page.reload()
    page.focus("#history-list button.copy")
    page.evaluate("() => { window.focused = document.activeElement; }")
    polls = []

    def answer(route, request):
        polls.append(1)
        fulfill_json(route, 200, job_json("running", id="new", queue={"ahead": 0, "position": 0, "estimate_s": 3}) if len(polls) < 2
                     else job_json("done", id="new", picture=picture_json(live_server, title="new")))

    page.route("**/api/v1/jobs/new", answer)
    page.route("**/api/v1/images", lambda route, request: fulfill_json(route, 202, job_json(
        "queued", id="new", status_url=live_server.url + "/api/v1/jobs/new", deletion_url=live_server.url + "/delete/secret/")))
    page.set_input_files("#images", image_file(tmp_path, png_bytes))
    page.dispatch_event("#upload-form", "submit")  # as from the keyboard: focus stays on the Copy button
    page.wait_for_selector("#history-list li:has-text('still encoding')")
    assert page.evaluate("() => document.activeElement === window.focused"), "focus lost when the upload was accepted"
    page.wait_for_function(DONE_CARD)
    page.wait_for_selector("#history-list li:has-text('new')")
    assert page.evaluate("() => document.activeElement === window.focused"), "focus lost when the upload finished"
    assert errors == []


# also -----------------------------------------------------------------------------------------
DRAG = """([type, target]) => {
    const data = new DataTransfer();
    data.items.add(new File(['x'], 'p.png', {type: 'image/png'}));
    const event = new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data});
    document.querySelector(target).dispatchEvent(event);
    return event.defaultPrevented;
}"""


def test_a_file_dropped_beside_the_drop_zone_does_not_open_it(browser, live_server):
    """Only the drop zone cancelled the browser's own drop: a file dropped just beside it was
    opened in place of the page (and the form lost)."""
    page, errors = new_page(browser)
    page.goto(live_server.url + "/")
    assert page.evaluate(DRAG, ["dragover", "h1"]) and page.evaluate(DRAG, ["drop", "h1"])
    assert page.locator(".result").count() == 0 and errors == []


def test_a_pasted_image_does_not_reuse_the_title_of_the_previous_upload(browser, live_server, png_bytes, tmp_path):
    """The form's submit cleared the title after sending it; paste and drop sent it again with every image."""
    page, errors = new_page(browser)
    bodies = []

    def handle(route, request):
        bodies.append(request.post_data_buffer)
        fulfill_json(route, 202, job_json("queued", id=f"j{len(bodies)}", status_url=f"{live_server.url}/api/v1/jobs/j{len(bodies)}"))

    page.route("**/api/v1/images", handle)
    page.route("**/api/v1/jobs/*", lambda route, request: fulfill_json(route, 200, job_json("queued")))
    page.goto(live_server.url + "/")
    page.fill("input[name=title]", "first title")
    paste = """() => { const data = new DataTransfer();
        data.items.add(new File([new Uint8Array([137, 80, 78, 71])], 'image.png', {type: 'image/png'}));
        document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true})); }"""
    page.evaluate(paste)
    page.wait_for_function("() => document.querySelectorAll('.result').length === 1")
    assert page.input_value("input[name=title]") == ""
    page.evaluate(paste)
    page.wait_for_function("() => document.querySelectorAll('.result').length === 2")
    assert len(bodies) == 2
    assert b"first title" in bodies[0] and not re.search(rb'name="title"', bodies[1])
    assert errors == []
