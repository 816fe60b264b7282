"""Throttles per scope, with Retry-After, keyed on the real client address."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from imagehost.ratelimits import client_ip

pytestmark = pytest.mark.django_db


def rest_settings(**changes):
    from django.conf import settings

    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, **changes})


def rates(**changes):
    """Override rate settings by scope name: ``decodes_anon="2/min"`` is EMMM_API_ANON_DECODE_RATE."""
    from imagehost.ratelimits import SCOPES

    named = {}
    for key, rate in changes.items():
        scope = SCOPES[key.removesuffix("_anon")]
        named[scope.anon_api_rate_setting if key.endswith("_anon") else scope.rate_setting] = rate
    return override_settings(**named)


@pytest.mark.parametrize(
    "num_proxies, xff, expected",
    [
        (0, "1.1.1.1", "10.0.0.9"),  # no proxies: the header is ignored
        (1, "6.6.6.6, 2.2.2.2", "2.2.2.2"),  # the address our proxy saw, not the client's claim
        (2, "6.6.6.6, 3.3.3.3, 10.0.0.2", "3.3.3.3"),
        (2, "3.3.3.3", "10.0.0.9"),  # did not pass both proxies: trust the socket only
        (1, "", "10.0.0.9"),
    ],
)
def test_client_ip(num_proxies, xff, expected, settings):
    settings.FORWARDED_ALLOW_IPS = ["10.0.0.9"]  # the proxy in front
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=xff)
    with rest_settings(NUM_PROXIES=num_proxies):
        assert api_settings.NUM_PROXIES == num_proxies
        assert client_ip(request) == expected


@pytest.mark.parametrize("trusted, expected", [(["127.0.0.1"], "203.0.113.9"), (["203.0.113.9"], "198.51.100.1"),
                                               (["*"], "198.51.100.1")])
def test_forwarded_for_is_read_only_from_a_trusted_proxy(settings, trusted, expected):
    """Behind the proxy a client that reached the web server directly chose its own key with a
    made-up X-Forwarded-For (a new one for each guess at a password)."""
    settings.FORWARDED_ALLOW_IPS = trusted  # the proxies' addresses, as gunicorn reads them
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.1")
    with rest_settings(NUM_PROXIES=1):
        assert client_ip(request) == expected


def test_anonymous_decodes_throttled_with_retry_after_and_spoofing_does_not_help(anon_client):
    with rates(decodes_anon="2/min"):
        for i in range(2):
            r = anon_client.post("/api/v1/inspect", {"token": "bad!"}, format="json", HTTP_X_FORWARDED_FOR=f"9.9.9.{i}")
            assert r.status_code == 400
        r = anon_client.post("/api/v1/inspect", {"token": "bad!"}, format="json", HTTP_X_FORWARDED_FOR="9.9.9.200")
    assert r.status_code == 429
    assert 0 < int(r["Retry-After"]) <= 60
    assert r.json()["error"]["code"] == "throttled"
    assert r.json()["error"]["retry_after"] == int(r["Retry-After"])


def test_behind_a_proxy_each_client_has_its_own_budget(anon_client):
    with rates(links_anon="1/min"), rest_settings(NUM_PROXIES=1):
        a = [anon_client.post("/api/v1/links", {}, format="json", HTTP_X_FORWARDED_FOR="5.5.5.5") for _ in range(2)]
        b = anon_client.post("/api/v1/links", {}, format="json", HTTP_X_FORWARDED_FOR="7.7.7.7")
    assert [x.status_code for x in a] == [400, 429]
    assert b.status_code == 400


def test_scopes_are_separate_and_users_get_their_own_rate(owner_client, anon_client, png_bytes):
    with rates(uploads_anon="1/min", uploads="3/min", decodes_anon="100/min"):
        codes = [anon_client.post("/api/v1/images", data=b"x", content_type="image/png").status_code for _ in range(2)]
        assert codes == [415, 429]
        assert anon_client.post("/api/v1/inspect", {"token": "bad!"}, format="json").status_code == 400
        user_codes = [
            owner_client.post("/api/v1/images", data=b"x", content_type="image/png").status_code for _ in range(4)
        ]
        assert user_codes == [415, 415, 415, 429]


def test_the_sites_own_upload_page_counts_at_the_sites_rate(anon_client, png_bytes):
    """With JavaScript the upload page sends its files through the API: an anonymous visitor
    was held to the anonymous API rate (10 a minute) while the same page without JavaScript
    had the site's (30); after ten files the next upload was "error 429"."""
    page = {"HTTP_SEC_FETCH_SITE": "same-origin"}  # a request the site's own page made (set by the browser)
    with rates(uploads="4/min", uploads_anon="2/min"):
        sent = [anon_client.post("/api/v1/images", png_bytes(16, 16, seed=i), content_type="image/png", **page).status_code
                for i in range(5)]
        assert sent == [202, 202, 202, 202, 429]
    with rates(uploads="40/min", uploads_anon="2/min"):
        other = APIClient(REMOTE_ADDR="192.0.2.9")  # a program: the anonymous API rate
        sent = [other.post("/api/v1/images", png_bytes(16, 16, seed=i), content_type="image/png").status_code
                for i in range(3)]
        cross = other.post("/api/v1/images", png_bytes(16, 16), content_type="image/png", HTTP_SEC_FETCH_SITE="cross-site")
        assert sent == [202, 202, 429] and cross.status_code == 429
