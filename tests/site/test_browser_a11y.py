"""The site with a keyboard only and with a screen reader (WCAG 2.1 AA), in headless Chromium:
no page that reloads under the user, status changes announced once, refusals tied to their
fields and focused, focus kept after actions, a skip link, no link named twice."""
import json

import pytest
from playwright.sync_api import expect

from imagehost.models import EncodeJob, JobStatus, Visibility
from imagehost.services import library, links
from .chromium import allow_sync_orm_beside_playwright, browser, sign_in  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ACTIVE = "() => document.activeElement === document.body ? 'BODY' : document.activeElement.outerHTML.slice(0, 80)"


def upload(page, live_server, png_bytes, tmp_path, js=True):
    page.goto(live_server.url + "/")
    image = tmp_path / "p.png"
    image.write_bytes(png_bytes(64, 48, seed=1))
    page.set_input_files("#images", str(image))
    page.click("main button[type=submit]")


# 1 ------------------------------------------------------------------------------------------
def test_1_no_js_result_page_does_not_reload_under_the_user(browser, live_server, png_bytes, tmp_path):
    """jobs.html: <meta http-equiv=refresh content=2> while pending: every 2 s focus and the
    screen reader's reading position go back to the top (F41; 2.2.1)."""
    ctx = browser.new_context(java_script_enabled=False)
    page = ctx.new_page()
    upload(page, live_server, png_bytes, tmp_path)
    page.wait_for_url("**/jobs/**")
    page.focus("main a[href='/']")  # "Upload more"
    page.wait_for_timeout(4500)
    focus = page.evaluate(ACTIVE)
    ctx.close()
    assert focus != "BODY", "the page reloaded itself and focus went back to the top"


# 2 ------------------------------------------------------------------------------------------
def test_2_upload_progress_is_announced_once_per_change_not_every_poll(browser, live_server, png_bytes, tmp_path):
    """#results (the whole list of cards) is the polite live region: every poll rewrites .eta
    ("about 58 s left", "56 s", ...), so a screen reader speaks every 2-3 s while encoding."""
    page = browser.new_context().new_page()
    left = iter(range(60, 0, -2))
    page.route("**/api/v1/jobs/*", lambda route, request: route.fulfill(
        status=200, headers={"Content-Type": "application/json"},
        body=json.dumps({"id": "x", "status": "running", "picture": None, "worker": None,
                         "queue": {"ahead": 0, "position": 0, "estimate_s": next(left)}})))
    page.goto(live_server.url + "/")
    page.evaluate("""() => { window.live = []; new MutationObserver(() => {
        window.live.push([...document.querySelectorAll('[aria-live], [role=status], [role=alert]')].map(r => r.textContent).join(' | ')); })
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    image = tmp_path / "p.png"
    image.write_bytes(png_bytes(64, 48, seed=1))
    page.set_input_files("#images", str(image))
    page.click("main button[type=submit]")
    page.wait_for_timeout(10000)
    changes = page.evaluate("() => window.live.filter((t, i, a) => i === 0 || t !== a[i - 1])")
    assert len(changes) <= 5, changes


# 3 ------------------------------------------------------------------------------------------
def test_3_refused_short_link_error_is_tied_to_the_field_and_focused(browser, live_server, user, other_user, make_picture):
    pic = make_picture(owner=user, title="Pemaquid")
    links.get_or_create_short_link(make_picture(other_user).token, other_user, slug="taken")
    page = browser.new_context().new_page()
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/p/{pic.pk}/")
    page.fill(".add-short-link input[name=slug]", "taken")
    page.press(".add-short-link input[name=slug]", "Enter")
    page.wait_for_selector(".add-short-link .form-error")
    page.wait_for_function("() => document.activeElement !== document.body", timeout=10_000)  # autofocus: next frame
    slug = page.evaluate("""() => { const i = document.querySelector('.add-short-link input[name=slug]');
        const ids = (i.getAttribute('aria-describedby') || '').split(' ');
        return {invalid: i.getAttribute('aria-invalid'), described: ids.map(id => (document.getElementById(id) || {}).textContent || '').join(' '),
                focused: document.activeElement === i, scrollY: window.scrollY}; }""")
    assert slug["invalid"] == "true" and "taken" in slug["described"] and slug["focused"], slug


# 4 ------------------------------------------------------------------------------------------
def test_4_wrong_password_error_reaches_a_screen_reader(browser, live_server, user):
    """After the refused POST, autofocus puts the reader in "Username: alice": the error above
    it is skipped; no field is marked invalid or described by it; the title is unchanged."""
    page = browser.new_context().new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type("wrong-password")
    page.keyboard.press("Enter")
    page.wait_for_selector(".errorlist")
    state = page.evaluate("""() => { const err = document.querySelector('.errorlist.nonfield');
        const described = [...document.querySelectorAll('#id_username, #id_password')].some(i => err.id && (i.getAttribute('aria-describedby') || '').includes(err.id));
        return {described, alert: !!err.closest('[role=alert]'), focusInError: err.contains(document.activeElement), title: document.title,
                invalid: document.querySelector('#id_password').getAttribute('aria-invalid')}; }""")
    assert state["described"] or state["alert"] or state["focusInError"] or state["title"].lower().startswith("error"), state


# 5 ------------------------------------------------------------------------------------------
def test_5_retry_as_avif_does_not_drop_focus(browser, live_server, png_bytes, tmp_path):
    from imagehost.models import EncodeJob
    from imagehost.services import jobs
    page = browser.new_context().new_page()
    upload(page, live_server, png_bytes, tmp_path)
    page.wait_for_selector(".result .status:not(:text('uploading'))")
    jobs.run_encode_job(EncodeJob.objects.get().pk)
    page.wait_for_selector(".result .done:not([hidden])", timeout=30_000)
    page.focus(".result .retry-avif")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.evaluate(ACTIVE) != "BODY"


# 6 ------------------------------------------------------------------------------------------
def test_6_reordering_an_album_keeps_focus_on_the_moved_picture(browser, live_server, user, make_picture):
    album = library.create_album(user, "Coast", Visibility.PRIVATE)
    for t in ("One", "Two", "Three"):
        make_picture(user, album=album, title=t)
    page = browser.new_context().new_page()
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/albums/{album.slug}/")
    page.focus(".album-grid li:nth-child(3) button[value=up]")
    with page.expect_navigation():  # keyboard.press does not wait for the POST and its redirect
        page.keyboard.press("Enter")
    expect(page.locator(".album-grid li span[dir]")).to_have_text(["One", "Three", "Two"])
    page.wait_for_function("() => document.activeElement !== document.body", timeout=10_000)  # autofocus: next frame
    assert "Three" in page.evaluate("() => (document.activeElement.closest('li') || {}).innerText || 'BODY'")


# 7 ------------------------------------------------------------------------------------------
def test_7_first_tab_stop_is_a_skip_link(browser, live_server, user):
    page = browser.new_context().new_page()
    sign_in(page, live_server)
    page.keyboard.press("Tab")
    first = page.evaluate("() => document.activeElement.getAttribute('href')")
    assert first and first.startswith("#"), f"first Tab stop: {first}; 10 header stops before <main>"


# 8 ------------------------------------------------------------------------------------------
def test_8_copied_is_announced_on_the_share_page(browser, live_server, make_picture):
    slug = links.get_or_create_short_link(make_picture(None, title="Harbour").token).slug
    page = browser.new_context(permissions=["clipboard-read", "clipboard-write"]).new_page()
    page.goto(f"{live_server.url}/s/{slug}/")
    page.focus("button.copy[data-copy=short-link]")
    page.keyboard.press("Enter")
    page.wait_for_selector("button.copy:text('Copied')")
    assert page.evaluate("() => [...document.querySelectorAll('[aria-live], [role=status], [role=alert]')].some(r => /copied/i.test(r.textContent))")


# 9 ------------------------------------------------------------------------------------------
def test_9_password_rules_describe_the_password_field(browser, live_server):
    page = browser.new_context().new_page()
    page.goto(live_server.url + "/accounts/signup/")
    described = page.evaluate("""() => (document.querySelector('#id_password1').getAttribute('aria-describedby') || '').split(' ')
        .map(id => (document.getElementById(id) || {}).textContent || '').join(' ')""")
    assert "8 characters" in described, repr(described)


# 10 -----------------------------------------------------------------------------------------
def test_10_grid_links_are_not_named_twice(browser, live_server, user, make_picture):
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    make_picture(user, album=album, title="Gull")
    page = browser.new_context().new_page()
    page.goto(f"{live_server.url}/albums/{album.slug}/")
    assert 'link "Gull"' in page.locator(".album-grid").aria_snapshot()


# 11 -----------------------------------------------------------------------------------------
def test_11_a_link_still_encoding_shows_its_picture_once_ready_and_never_reloads_before(browser, live_server, user, token_pool):
    """short_encoding.html: <meta http-equiv=refresh content=3>: whoever opened a just-shared
    link had the page (focus, reading position) reloaded every 3 s until the encode ended (F41)."""
    job = EncodeJob.objects.create(owner=user, status=JobStatus.QUEUED, source=b"x")
    slug = links.reserve_short_link(job).slug
    page = browser.new_context().new_page()
    response = page.goto(f"{live_server.url}/s/{slug}/")
    assert response.status == 503 and "Encoding…" in page.inner_text("main")
    page.evaluate("() => { window.stayed = true }")
    page.wait_for_timeout(4000)  # over the 3 s the link asks clients to wait
    assert page.evaluate("() => window.stayed === true"), "the page reloaded itself while encoding"
    links.fill_reserved_links(job, token_pool(0).token)  # the worker ends the job
    EncodeJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, source=None)
    page.wait_for_selector("main img", timeout=15_000)  # shown without the reader doing anything
    assert page.url == f"{live_server.url}/s/{slug}/"
