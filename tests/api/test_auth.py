"""API tokens (hashed, shown once, revocable), session auth, the settings page and ShareX."""

from __future__ import annotations

import json
import re

import pytest

from imagehost.api.models import ApiToken, hash_token

pytestmark = pytest.mark.django_db


def test_token_is_stored_hashed_and_authenticates(owner, owner_client):
    raw = owner_client.raw_token
    row = ApiToken.objects.get(user=owner)
    assert row.digest == hash_token(raw) and raw not in (row.digest, row.prefix)
    assert raw.startswith(row.prefix)
    assert owner_client.get("/api/v1/albums").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer emmm_wrong", "Bearer", "Bearer a b", "Token emmm_x", "Bearer \u00e9"])
def test_bad_credentials_are_401(anon_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header.encode("utf-8").decode("latin-1"))
    r = anon_client.get("/api/v1/albums")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "authentication_failed"
    assert r["WWW-Authenticate"] == 'Bearer realm="api"'


def test_revoked_token_is_401(owner, owner_client):
    ApiToken.objects.get(user=owner).revoke()
    assert owner_client.get("/api/v1/albums").status_code == 401


def test_session_auth_works_and_needs_csrf(owner, client):
    from rest_framework.test import APIClient

    client.force_login(owner)
    assert client.get("/api/v1/albums").status_code == 200
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(owner)
    r = strict.post("/api/v1/albums", {"title": "x"}, format="json")
    assert r.status_code == 403  # session writes need the CSRF token, as the site's JS sends


def create_token(client, name: str) -> str:
    """Create a token on the settings page as a browser does (POST, 303, GET); its raw value."""
    r = client.post("/api/tokens/", {"name": name})
    assert r.status_code == 303 and r["Location"] == "/api/tokens/"
    page = client.get(r["Location"])
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    return page.context["raw_token"]


def test_settings_page_creates_shows_once_and_revokes(owner, client):
    client.force_login(owner)
    raw = create_token(client, "backup script")
    row = ApiToken.objects.get(user=owner, name="backup script")
    assert row.digest == hash_token(raw)
    page = client.get("/api/tokens/")
    assert raw.encode() not in page.content and b"backup script" in page.content
    assert row.prefix.encode() in page.content
    r = client.post(f"/api/tokens/{row.pk}/revoke")  # one tap stopped every program using it
    assert r.status_code == 200 and "Revoke the API token “backup script”?" in r.content.decode()
    row.refresh_from_db()
    assert row.is_active
    r = client.post(f"/api/tokens/{row.pk}/revoke", {"confirm": "yes"})
    assert r.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert client.post("/api/tokens/", {"name": "  "}).status_code == 400


def test_creating_a_token_redirects_and_the_page_shows_it_once(owner, client):
    """Post/Redirect/Get: reloading the page that shows the new token creates no second one."""
    client.force_login(owner)
    r = client.post("/api/tokens/", {"name": "backup script"})
    assert r.status_code == 303 and r["Location"] == "/api/tokens/"
    assert ApiToken.objects.filter(user=owner).count() == 1
    shown = client.get("/api/tokens/")
    raw = shown.context["raw_token"]
    assert shown.status_code == 200 and shown["Cache-Control"] == "no-store"
    assert shown.content.decode().count(f'value="{raw}"') == 2  # the copy field and the ShareX form's
    assert ApiToken.lookup(raw) == ApiToken.objects.get(user=owner) and "“backup script”" in shown.content.decode()
    reload = client.get("/api/tokens/")
    assert reload.status_code == 200 and reload.context["raw_token"] is None
    assert raw.encode() not in reload.content and "no-store" not in reload.get("Cache-Control", "")
    assert ApiToken.objects.filter(user=owner).count() == 1
    from django.contrib.sessions.models import Session

    assert not any(raw in str(row.get_decoded()) for row in Session.objects.all())  # never on the server
    assert shown.cookies["emmm_new_api_token"]["max-age"] == 0  # the browser drops it once shown


def test_a_head_request_does_not_use_up_the_new_token(owner, client):
    client.force_login(owner)
    client.post("/api/tokens/", {"name": "backup script"})
    assert client.head("/api/tokens/").status_code == 200
    assert client.get("/api/tokens/").context["raw_token"]


def test_a_new_token_revoked_before_it_is_shown_is_not_shown(owner, client):
    client.force_login(owner)
    client.post("/api/tokens/", {"name": "backup script"})
    ApiToken.objects.get(user=owner).revoke()  # e.g. in another tab
    assert client.get("/api/tokens/").context["raw_token"] is None


def test_a_refused_token_is_answered_on_the_page_and_shows_nothing(owner, client):
    client.force_login(owner)
    r = client.post("/api/tokens/", {"name": "  "})
    assert r.status_code == 400 and "Give the token a name" in r.content.decode() and r.context["raw_token"] is None
    assert not ApiToken.objects.filter(user=owner).exists()
    assert client.get("/api/tokens/").context["raw_token"] is None


def test_settings_page_needs_login_and_own_tokens(client, owner, other):
    assert client.get("/api/tokens/").status_code == 302
    theirs, _ = ApiToken.issue(other, "theirs")
    client.force_login(owner)
    assert client.post(f"/api/tokens/{theirs.pk}/revoke").status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active


def test_sharex_file_uploads_with_a_new_token(client, owner, make_album):
    album = make_album()
    client.force_login(owner)
    r = client.post("/api/tokens/sharex.sxcu", {"album": album.slug})
    assert r.status_code == 200
    assert r["Content-Disposition"].startswith("attachment;") and ".sxcu" in r["Content-Disposition"]
    cfg = json.loads(r.content)
    assert cfg["RequestURL"] == "http://testserver/api/v1/images"
    assert cfg["Body"] == "MultipartFormData" and cfg["FileFormName"] == "file"
    assert cfg["Parameters"] == {"album": album.slug}  # no `wait`: the answer comes at once (issue 11)
    assert cfg["URL"] == "{json:short_url}"  # reserved before encoding, so never empty
    assert cfg["DeletionURL"] == "{json:deletion_url}"
    raw = cfg["Headers"]["Authorization"].removeprefix("Bearer ")
    token = ApiToken.lookup(raw)
    assert token is not None and token.user == owner and token.name.startswith("ShareX")


def test_an_account_has_a_bounded_number_of_active_tokens(client, owner, settings):
    """Every POST made a token and every ShareX download without one too, without end."""
    settings.EMMM_MAX_API_TOKENS = 3
    client.force_login(owner)
    for i in range(3):
        assert client.post("/api/tokens/", {"name": f"t{i}"}).status_code == 303
    r = client.post("/api/tokens/", {"name": "one too many"})
    assert r.status_code == 400 and "3 active API tokens" in r.content.decode() and "revoke one" in r.content.decode()
    r = client.post("/api/tokens/sharex.sxcu", {})
    assert r.status_code == 400 and "3 active API tokens" in r.content.decode()
    assert ApiToken.objects.filter(user=owner).count() == 3
    client.post(f"/api/tokens/{ApiToken.objects.filter(user=owner).first().pk}/revoke", {"confirm": "yes"})
    assert client.post("/api/tokens/", {"name": "room again"}).status_code == 303


def test_the_token_page_lists_the_active_tokens_and_only_the_latest_revoked(client, owner):
    client.force_login(owner)
    for i in range(15):
        ApiToken.issue(owner, f"old {i:02}")[0].revoke()
    ApiToken.issue(owner, "in use")
    page = client.get("/api/tokens/").content.decode()
    assert "in use" in page and "old 14" in page and "old 05" in page
    assert "old 04" not in page and "and 5 older revoked tokens" in page


def test_sharex_file_for_a_just_created_token(client, owner, other):
    """The page that shows the new token has a ShareX button for it (its form posts the token)."""
    client.force_login(owner)
    client.post("/api/tokens/", {"name": "sx"})
    page = client.get("/api/tokens/")
    raw = page.context["raw_token"]
    button = re.search(r'<form method="post" action="/api/tokens/sharex.sxcu">(.*?)</form>', page.content.decode(), re.S)
    assert button and f'<input type="hidden" name="token" value="{raw}">' in button[1]
    cfg = json.loads(client.post("/api/tokens/sharex.sxcu", {"token": raw, "album": ""}).content)
    assert cfg["Headers"]["Authorization"] == f"Bearer {raw}"
    assert ApiToken.objects.filter(user=owner).count() == 1
    _, theirs = ApiToken.issue(other, "theirs")
    assert client.post("/api/tokens/sharex.sxcu", {"token": theirs}).status_code == 404


def test_nav_links_to_the_tokens_page(client, owner):
    client.force_login(owner)
    assert b'href="/api/tokens/"' in client.get("/library/").content
