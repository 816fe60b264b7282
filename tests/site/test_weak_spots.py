"""Issue 8.8: throttles on login, password reset and slug look-ups; uploads cost one unit per
file; one bucket per scope for site and API; the API's JSON 413; ShareX downloads."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from imagehost.api.models import ApiToken
from imagehost.services import links

pytestmark = pytest.mark.django_db


def test_login_is_throttled_per_address(client, settings, user):
    settings.EMMM_LOGIN_RATE = "3/h"
    codes = [client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    assert client.get("/accounts/login/").status_code == 200  # showing the form costs nothing


def test_every_login_form_counts_against_one_limit(client, settings, admin_user):
    """The admin's own login page (/admin/login/) took unlimited password guesses: the limit sat
    on one URL. It now sits on the password check itself, so both pages share one bucket."""
    settings.EMMM_LOGIN_RATE = "4/h"
    wrong = {"username": admin_user.username, "password": "wrong", "next": "/admin/"}
    codes = [client.post(url, wrong).status_code for url in ("/admin/login/", "/accounts/login/") * 2]
    assert codes == [200, 400, 200, 400]  # the admin's form answers 200 with its error
    r = client.post("/admin/login/", wrong)
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1
    assert client.post("/admin/login/", {**wrong, "password": "password"}).status_code == 429  # not even the right one
    assert client.post("/accounts/login/", wrong).status_code == 429
    assert client.get("/admin/login/").status_code == 200  # showing the form costs nothing


def test_password_reset_is_throttled_per_address(client, settings, user):
    settings.EMMM_PASSWORD_RESET_RATE = "2/h"
    codes = [client.post("/accounts/password_reset/", {"email": "alice@example.com"}).status_code for _ in range(3)]
    assert codes == [302, 302, 429]


def test_slug_look_ups_are_throttled(client, settings, make_picture):
    settings.EMMM_SLUG_RATE = "4/h"
    link = links.get_or_create_short_link(make_picture(None).token)
    codes = [client.get(url).status_code for url in ("/s/guess1/", "/s/guess2", f"/s/{link.slug}/", "/s/guess3/")]
    assert codes == [404, 404, 200, 404]
    assert client.get(f"/s/{link.slug}/").status_code == 429
    assert client.get("/s/guess4").status_code == 429


def test_site_uploads_cost_one_unit_per_file(client, settings, png_bytes):
    settings.EMMM_UPLOAD_RATE = "10/h"
    files = [SimpleUploadedFile(f"{i}.png", png_bytes(16, 16, i), "image/png") for i in range(10)]
    assert client.post("/", {"images": files}).status_code == 303
    one = SimpleUploadedFile("x.png", png_bytes(16, 16), "image/png")
    assert client.post("/", {"images": [one]}).status_code == 429


def test_site_and_api_share_one_bucket_per_scope(client, settings):
    settings.EMMM_SHORTLINK_RATE = settings.EMMM_API_ANON_LINK_RATE = "3/h"
    api = APIClient()
    codes = [client.post("/shorten", {"token": "bad!"}).status_code for _ in range(2)]
    codes += [api.post("/api/v1/links", {"token": "bad!"}, format="json").status_code for _ in range(2)]
    assert codes == [400, 400, 400, 429]


def test_a_huge_json_body_gets_the_apis_json_413():
    body = b'{"token": "' + b"A" * (20 * 1024 * 1024) + b'"}'
    r = APIClient().post("/api/v1/decode", data=body, content_type="application/json")
    assert r.status_code == 413
    assert r["Content-Type"] == "application/json"
    assert r.json()["error"]["status"] == 413


def test_a_failed_sharex_download_creates_no_api_token(client, user):
    client.force_login(user)
    r = client.post("/api/tokens/sharex.sxcu", {"album": "no-such-album"})
    assert r.status_code == 404
    assert not ApiToken.objects.exists()
    assert client.post("/api/tokens/sharex.sxcu").status_code == 200
    assert ApiToken.objects.count() == 1


def test_sessions_signed_in_before_the_login_limit_backend_stay_signed_in(client, user):
    """A session names the backend that signed it in; one from before LoginRateLimitedBackend
    (Django's ModelBackend) must not be signed out by the change."""
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/library/").status_code == 200


def test_guessing_the_old_password_on_the_change_form_counts_too(client, settings, user):
    """The password-change form checks the old password itself (not through a backend): a
    hijacked session could guess it without limit."""
    settings.EMMM_LOGIN_RATE = "2/h"
    client.force_login(user)
    wrong = {"old_password": "guess", "new_password1": "n3w-pass-word-1", "new_password2": "n3w-pass-word-1"}
    codes = [client.post("/accounts/password_change/", wrong).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    assert client.get("/accounts/password_change/").status_code == 200  # showing the form costs nothing
