"""Error pages a person can hit on a phone: the site's own page (viewport, styles, a way back),
never Django's stock ones."""
from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _site_page(body: str) -> bool:
    return 'name="viewport"' in body and "site.css" in body


def test_a_refused_csrf_check_is_the_sites_page_and_says_what_to_do(user):
    """Two tabs: sign in in one, send the other's form (signing in rotates the CSRF token).
    Django's stock 403 page has no viewport (980 px wide on a phone), no styles, no link."""
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")  # the CSRF cookie
    r = client.post("/accounts/login/", {"username": user.username, "password": "x", "csrfmiddlewaretoken": "stale" * 8},
                    HTTP_REFERER="http://testserver/accounts/login/")
    body = r.content.decode()
    assert r.status_code == 403 and _site_page(body)
    assert "reload the page and send it again" in body and '<a href="/accounts/login/" id="error-back">' in body


def test_a_post_without_the_sites_cookie_says_to_allow_cookies():
    r = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "a", "password": "b"})
    assert r.status_code == 403 and _site_page(r.content.decode())
    assert "cookies" in r.content.decode()


def test_a_script_gets_the_csrf_refusal_as_json():
    r = Client(enforce_csrf_checks=True).post("/accounts/login/", {}, HTTP_ACCEPT="application/json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"


@pytest.mark.parametrize(
    "path",
    ["/s/no-such-link", "/s/no-such-link/", "/i/not!a!token", "/i/" + "A" * 200_000, "/no/such/page/", "/api/v1/jobs/not-a-job"],
    ids=["link", "link-page", "bad-token", "long-token", "page", "api"],
)
def test_an_error_answer_is_not_kept_by_caches(client, path):
    """404, 410 and 414 are cacheable by default (RFC 9111 §4.2.2): without Cache-Control a
    shared cache could keep a refusal after the link is made or the image unblocked."""
    r = client.get(path)
    assert 400 <= r.status_code < 500
    assert r["Cache-Control"] == "no-store"


def test_a_takedown_answer_is_not_kept_by_caches(client, real_token):
    from imagehost.services import tokens

    assert client.get(f"/i/{real_token}").status_code == 200
    tokens.block_token(real_token)
    r = client.get(f"/i/{real_token}")
    assert r.status_code == 410 and r["Cache-Control"] == "no-store"
    tokens.unblock_token(real_token)
    assert client.get(f"/i/{real_token}").status_code == 200
