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
    assert client.post("/accounts/signup/", form).status_code == 400  # invalid form, counted
    r = client.post("/accounts/signup/", form)
    assert r.status_code == 429 and int(r["Retry-After"]) > 3500
    assert client.get("/accounts/signup/").status_code == 200  # only POSTs count


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.stack)])
def cache_backend(request, settings):
    """The default cache as the site runs it: the file cache (``make run``) or Redis (production)."""
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        server.client().flushall()
        settings.CACHES = {"default": {"BACKEND": "emmmsite.redis_cache.RedisCache", "LOCATION": server.url}}
    return request.param


def test_a_request_may_cost_several_units(rf, settings, cache_backend):
    settings.EMMM_UPLOAD_RATE = "4/h"
    request = rf.post("/", REMOTE_ADDR="10.1.2.3")
    request.user = AnonymousUser()
    ratelimits.check(request, "uploads", cost=3)
    with pytest.raises(ratelimits.RateLimited) as refused:
        ratelimits.check(request, "uploads", cost=2)
    assert refused.value.retry_after > 3500
    ratelimits.check(request, "uploads", cost=1)  # the refused request cost nothing
    with pytest.raises(ratelimits.RateLimited) as never:
        ratelimits.check(request, "uploads", cost=5)  # more than the whole rate
    assert never.value.retry_after == 3600


def test_the_window_slides(rf, settings, monkeypatch, cache_backend):
    now = [1_000_000.0]
    monkeypatch.setattr(ratelimits.ScopeLimiter, "timer", staticmethod(lambda: now[0]))
    settings.EMMM_LOGIN_RATE = "2/m"
    request = rf.post("/accounts/login/", REMOTE_ADDR="10.4.4.4")
    request.user = AnonymousUser()

    def retry_after_at(t: float) -> int | None:
        now[0] = 1_000_000.0 + t
        try:
            ratelimits.check(request, "logins")
        except ratelimits.RateLimited as refused:
            return refused.retry_after
        return None

    assert retry_after_at(0) is None and retry_after_at(10) is None
    assert retry_after_at(20) == 40  # the entry of t=0 expires at t=60
    assert retry_after_at(60.5) is None  # it has: one unit free again
    assert retry_after_at(61) == 9  # now t=10's entry is the one to wait for


def test_every_scope_names_existing_settings(settings):
    for scope in ratelimits.SCOPES.values():
        assert isinstance(getattr(settings, scope.rate_setting), str)
        assert isinstance(getattr(settings, scope.anon_api_rate_setting), str)


def _concurrent_passes(rf, threads: int, rounds: int) -> list[int]:
    """Requests of one client let through when ``threads`` arrive at once, in each of ``rounds``
    fresh windows (the bucket is emptied between rounds)."""
    import threading

    request = rf.post("/accounts/login/", REMOTE_ADDR="10.9.8.7")
    request.user = AnonymousUser()
    passes = []
    for _ in range(rounds):
        ratelimits.counter_store().clear()
        start, allowed, lock = threading.Barrier(threads), [], threading.Lock()

        def attempt() -> None:
            start.wait()
            try:
                ratelimits.check(request, "logins")
            except ratelimits.RateLimited:
                return
            with lock:
                allowed.append(1)

        workers = [threading.Thread(target=attempt) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
        passes.append(len(allowed))
    return passes


def test_concurrent_requests_never_exceed_the_rate(rf, settings, cache_backend):
    """Counting is atomic: many requests at once get exactly the rate through, not more."""
    settings.EMMM_LOGIN_RATE = "5/m"
    assert _concurrent_passes(rf, threads=24, rounds=20) == [5] * 20


def test_an_ipv6_client_is_limited_per_64_block(rf, settings):
    """One IPv6 host (or home network) holds a whole /64 and may use any address in it; keyed
    per address, anonymous limits did not limit it at all. IPv4 stays per address."""
    settings.EMMM_LOGIN_RATE = "2/h"

    def allowed(address: str) -> bool:
        request = rf.post("/accounts/login/", REMOTE_ADDR=address)
        request.user = AnonymousUser()
        try:
            ratelimits.check(request, "logins")
        except ratelimits.RateLimited:
            return False
        return True

    assert [allowed(f"2001:db8:1:2::{i:x}") for i in range(1, 4)] == [True, True, False]  # one /64
    assert allowed("2001:db8:1:3::1")  # the next /64 is someone else
    assert [allowed(a) for a in ("192.0.2.1", "192.0.2.1", "192.0.2.2")] == [True, True, True]
    assert not allowed("::ffff:192.0.2.1")  # IPv4-mapped: the same IPv4 client
    assert allowed("not an address") and allowed("not an address")  # unparsable: kept as it is


def test_filling_the_cache_does_not_reset_anyones_limit(client, settings, tmp_path):
    """The embedded file cache culls entries at random when full, and any client can fill it
    (each unknown /s/<slug> leaves an entry): counters kept in it were culled too, so a client
    could reset its own login or reset limit. Counters have a store of their own."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                    "LOCATION": str(tmp_path / "cache"), "OPTIONS": {"MAX_ENTRIES": 40, "CULL_FREQUENCY": 2}},
        "ratelimits": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                       "LOCATION": str(tmp_path / "ratelimits")},
    }
    settings.EMMM_PASSWORD_RESET_RATE = "1/h"
    settings.EMMM_SLUG_RATE = "1000/m"
    assert client.post("/accounts/password_reset/", {"email": "x@example.com"}).status_code == 302
    assert client.post("/accounts/password_reset/", {"email": "x@example.com"}).status_code == 429
    for i in range(400):  # about 20 culls of half the default cache
        assert client.get(f"/s/no-such-link-{i}").status_code == 404
    assert client.post("/accounts/password_reset/", {"email": "x@example.com"}).status_code == 429
