"""The rate-limit scope table: Retry-After from the scope's rate, costs, one engine for both surfaces."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from imagehost import ratelimits
from tests.conftest import FAKE_TOKEN

pytestmark = pytest.mark.django_db


def test_site_retry_after_follows_the_scopes_rate(client, settings):
    settings.EMMM_DECODE_RATE = "1/h"
    assert client.get("/i/!bad").status_code == 400
    r = client.get("/i/!bad")
    assert r.status_code == 429
    assert 3500 < int(r["Retry-After"]) <= 3600  # an hour window, not a fixed minute
    settings.EMMM_SHORTLINK_RATE = "1/d"
    client.post("/shorten", {"token": FAKE_TOKEN + "!"})
    r = client.post("/shorten", {"token": FAKE_TOKEN + "!"}, HTTP_ACCEPT="application/json")
    assert r.status_code == 429 and int(r["Retry-After"]) > 86000
    assert r.json()["error"]["code"] == "throttled"


def test_signups_have_a_scope_of_their_own(client, settings):
    settings.EMMM_SIGNUP_RATE = "1/h"
    form = {"username": "x", "password1": "p", "password2": "q"}
    assert client.post("/accounts/signup/", form).status_code == 200  # invalid form, counted
    r = client.post("/accounts/signup/", form)
    assert r.status_code == 429 and int(r["Retry-After"]) > 3500
    assert client.get("/accounts/signup/").status_code == 200  # only POSTs count


def test_a_request_may_cost_several_units(rf, settings):
    settings.EMMM_UPLOAD_RATE = "4/h"
    request = rf.post("/", REMOTE_ADDR="10.1.2.3")
    request.user = AnonymousUser()
    ratelimits.check(request, "uploads", cost=3)
    with pytest.raises(ratelimits.RateLimited) as refused:
        ratelimits.check(request, "uploads", cost=2)
    assert refused.value.retry_after > 3500
    ratelimits.check(request, "uploads", cost=1)  # the refused request cost nothing


def test_every_scope_names_existing_settings(settings):
    for scope in ratelimits.SCOPES.values():
        assert isinstance(getattr(settings, scope.rate_setting), str)
        assert isinstance(getattr(settings, scope.anon_api_rate_setting), str)
