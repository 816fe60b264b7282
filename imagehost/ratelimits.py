"""Rate limits: one table of scopes, read by the site's views and the API's throttles alike.

=========  ==============================  ================================  ==============
scope      rate setting (signed in, and    rate setting for anonymous         key
           every site page)                API clients
=========  ==============================  ================================  ==============
uploads    ``EMMM_UPLOAD_RATE``            ``EMMM_API_ANON_UPLOAD_RATE``     ``user_or_ip``
decodes    ``EMMM_DECODE_RATE``            ``EMMM_API_ANON_DECODE_RATE``     ``user_or_ip``
links      ``EMMM_SHORTLINK_RATE``         ``EMMM_API_ANON_LINK_RATE``       ``user_or_ip``
signups    ``EMMM_SIGNUP_RATE``            (same)                            ``ip_only``
logins     ``EMMM_LOGIN_RATE``             (same)                            ``ip_only``
resets     ``EMMM_PASSWORD_RESET_RATE``    (same)                            ``ip_only``
slugs      ``EMMM_SLUG_RATE``              (same)                            ``user_or_ip``
searches   ``EMMM_SEARCH_RATE``            ``EMMM_API_ANON_SEARCH_RATE``     ``user_or_ip``
=========  ==============================  ================================  ==============

Anonymous clients are counted per IPv4 address or per IPv6 /64 (``client_network``).
The site's own pages calling the API with JavaScript count at the site's rate (``Scope.rate``).
``logins`` counts every sign-in password check made for a request (``LoginRateLimitedBackend``:
the site's login, the admin's, any other form) and the site's password-change form's old
password (``urls.py``; the admin's own password-change page is not counted), ``resets`` every mail a visitor makes the site send to
an address they type (POSTs to the reset page, e-mail confirmations), and every such mail
also counts against its address, whoever asks (``check_mail_to``, ``EMMM_MAILS_TO_ADDRESS_RATE``); ``slugs`` counts the
pages named by an unguessable slug or key (``/s/<slug>`` and its page and QR code,
``/delete/<key>/``, albums on the site and the API), so guessing them is as slow as the rate.

A rate is ``"<count>/<period>"`` (``s``, ``m``, ``h``, ``d``, or ``second``, ``minute``,
``hour``, ``day``, an s at the end allowed; ``emmmsite.environment.rate`` refuses other words,
which DRF would read by their first letter: ``3/month`` was 3 a minute). The engine is a
sliding-window log in a cache (``counter_store``) behind DRF's ``SimpleRateThrottle`` interface, so
``Retry-After`` follows from the scope's rate. Counting is atomic, so requests that arrive
at once never get more than the rate through (DRF's own read-then-write let all of 24
simultaneous logins through a 5/m limit): with Redis one Lua script per request (trim,
count, add: also one round trip instead of a GET and a SET); with any other cache the read
and write happen under one of ``LOCK_STRIPES`` ``flock`` files in ``EMMM_LOCK_DIR`` (every
process of the machine). A request may cost several units
(``cost=``: one per uploaded file). The site and the API count in one bucket per scope
(``bucket_name``); only the rate differs for anonymous API clients. A new scope is one row
in ``SCOPES``.
``EMMM_RATELIMIT_ENABLE=0`` turns every limit off.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import ipaddress
import math
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache, caches
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .services.hits import redis_backend

#: Lock files the non-Redis caches' counting is serialised on (a bucket key picks one).
LOCK_STRIPES = 64


def client_ip(request: HttpRequest) -> str:
    """The real client address: ``REMOTE_ADDR``, or behind ``EMMM_NUM_PROXIES`` trusted proxies
    (the nearest at an address in ``FORWARDED_ALLOW_IPS``, as gunicorn reads it) the address
    the outermost of them saw (read from the right of ``X-Forwarded-For``).

    A client-supplied header alone never decides the key.
    """
    meta = request.META
    remote = meta.get("REMOTE_ADDR", "") or ""
    num_proxies = api_settings.NUM_PROXIES or 0
    trusted = settings.FORWARDED_ALLOW_IPS
    if num_proxies <= 0 or not ("*" in trusted or remote in trusted):
        return remote  # no proxy, or a client that reached the web server directly: the socket
    addrs = [a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if len(addrs) < num_proxies:
        # The request did not pass through all configured proxies: trust only the socket.
        return remote
    return addrs[-num_proxies]


def client_network(request: HttpRequest) -> str:
    """What an anonymous limit counts: the client's IPv4 address, or its IPv6 /64 (one host or
    home network holds a whole /64 and may use any address in it). Unparsable: as it is."""
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


def _is_signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated)


def user_or_ip(request: HttpRequest) -> str:
    """Signed-in users are limited per account, everyone else per client address."""
    return f"user:{request.user.pk}" if _is_signed_in(request) else f"ip:{client_network(request)}"


def ip_only(request: HttpRequest) -> str:
    return f"ip:{client_network(request)}"


@dataclass(frozen=True)
class Scope:
    name: str
    rate_setting: str
    anon_api_rate_setting: str
    key: Callable[[HttpRequest], str]

    def rate(self, request: HttpRequest, surface: str) -> str | None:
        """The rate for this request: anonymous API clients get the tighter anonymous rate; the
        site's own pages, which call the API with JavaScript, get the site's."""
        anonymous_program = surface == "api" and not _is_signed_in(request) and not _from_the_sites_own_page(request)
        return getattr(settings, self.anon_api_rate_setting if anonymous_program else self.rate_setting)


def _from_the_sites_own_page(request: HttpRequest) -> bool:
    """A request one of the site's pages made (``Sec-Fetch-Site: same-origin``, which browsers
    set and scripts cannot). A program that sends it gets the site's rate, no more than the
    same page's form gives it without JavaScript."""
    return request.headers.get("Sec-Fetch-Site") == "same-origin"


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope("uploads", "EMMM_UPLOAD_RATE", "EMMM_API_ANON_UPLOAD_RATE", user_or_ip),
        Scope("decodes", "EMMM_DECODE_RATE", "EMMM_API_ANON_DECODE_RATE", user_or_ip),
        Scope("links", "EMMM_SHORTLINK_RATE", "EMMM_API_ANON_LINK_RATE", user_or_ip),
        Scope("signups", "EMMM_SIGNUP_RATE", "EMMM_SIGNUP_RATE", ip_only),
        Scope("logins", "EMMM_LOGIN_RATE", "EMMM_LOGIN_RATE", ip_only),
        Scope("resets", "EMMM_PASSWORD_RESET_RATE", "EMMM_PASSWORD_RESET_RATE", ip_only),
        Scope("slugs", "EMMM_SLUG_RATE", "EMMM_SLUG_RATE", user_or_ip),
        Scope("searches", "EMMM_SEARCH_RATE", "EMMM_API_ANON_SEARCH_RATE", user_or_ip),
    )
}


def bucket_name(scope: Scope, surface: str) -> str:
    """The cache bucket of a scope: one for the site and the API together (issue 8.8)."""
    return scope.name


class ScopeLimiter(SimpleRateThrottle):
    """One scope's limiter for one request (DRF's throttle; also used by the site's views)."""

    def __init__(self, scope_name: str, surface: str) -> None:  # rates are read per request
        self.scope_def = SCOPES[scope_name]
        self.surface = surface
        self._wait: float | None = None

    def allow_request(self, request: HttpRequest, view=None, cost: int = 1) -> bool:
        if not settings.EMMM_RATELIMIT_ENABLE:
            return True
        self.rate = self.scope_def.rate(request, self.surface)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = f"throttle_{bucket_name(self.scope_def, self.surface)}_{self.scope_def.key(request)}"
        self._wait = take(self.key, self.timer(), self.duration, self.num_requests, cost)
        return self._wait is None

    def wait(self) -> float | None:
        """Seconds until enough of the window's units have expired for this request's cost."""
        return self._wait

    def retry_after(self) -> int:
        """Whole seconds until the request would be allowed (at least 1)."""
        return max(1, math.ceil(self.wait() or 1))


def counter_store():
    """Where the counters live: the ``ratelimits`` cache where one is configured (the embedded
    file cache culls entries at random when full, and clients can fill the default one, e.g.
    with unknown /s/<slug> look-ups: counters get a folder of their own), else the default
    cache (Redis: nothing is culled)."""
    return caches["ratelimits"] if "ratelimits" in settings.CACHES else cache


def take(key: str, now: float, duration: float, limit: int, cost: int) -> float | None:
    """Count ``cost`` units in the sliding window ``key`` (at most ``limit`` per ``duration``
    seconds), atomically: None if they fit (and are counted), else the seconds until they
    would (nothing counted)."""
    store = counter_store()
    redis = redis_backend(store)  # the Redis client behind it, if any
    if redis is not None:
        return _take_redis(redis.get_client(write=True), store.make_key(key), now, duration, limit, cost)
    with _stripe_lock(key):
        history = store.get(key, [])  # newest first
        while history and history[-1] <= now - duration:
            history.pop()
        over = len(history) + cost - limit
        if over > 0:
            return _wait(history[-over] if over <= len(history) else None, now, duration)
        store.set(key, [now] * cost + history, duration)
        return None


def _wait(oldest_needed: float | None, now: float, duration: float) -> float:
    """Seconds until the window entry ``oldest_needed`` expires (None: a cost over the whole
    rate, never allowed: a full window)."""
    return float(duration) if oldest_needed is None else max(0.0, oldest_needed + duration - now)


@contextmanager
def _stripe_lock(key: str) -> Iterator[None]:
    directory = Path(settings.EMMM_LOCK_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stripe = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % LOCK_STRIPES
    fd = os.open(directory / f"ratelimit.{stripe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# KEYS[1]: a sorted set of window entries (score: time). ARGV: now, duration, limit, cost, a
# unique prefix for this request's members. Returns {1} (counted) or {0, score of the entry
# whose expiry lets the request in, or false when the cost is over the whole rate}.
_WINDOW_SCRIPT = """
local now, duration = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - duration)
local count = redis.call('ZCARD', KEYS[1])
local over = count + cost - limit
if over > 0 then
  if over > count then return {0, false} end
  return {0, redis.call('ZRANGE', KEYS[1], over - 1, over - 1, 'WITHSCORES')[2]}
end
for i = 1, cost do redis.call('ZADD', KEYS[1], now, ARGV[5] .. i) end
redis.call('PEXPIRE', KEYS[1], math.ceil(duration * 1000))
return {1}
"""


_window_script = None  # redis-py's Script (EVALSHA, loading the script where it is missing)


def _take_redis(client, full_key: str, now: float, duration: float, limit: int, cost: int) -> float | None:
    global _window_script
    if _window_script is None:
        _window_script = client.register_script(_WINDOW_SCRIPT)
    reply = _window_script(keys=[full_key], args=[repr(now), duration, limit, cost, uuid.uuid4().hex], client=client)
    if reply[0] == 1:
        return None
    return _wait(float(reply[1]) if reply[1] is not None else None, now, duration)


class RateLimited(Exception):
    """Raised by ``rate_limited`` views; the site's error middleware answers 429."""

    def __init__(self, retry_after: int):
        super().__init__("Too many requests.")
        self.retry_after = retry_after


def check(request: HttpRequest, scope_name: str, *, surface: str = "site", cost: int = 1) -> None:
    """Count a request against a scope; raises RateLimited (with its Retry-After) when over."""
    limiter = ScopeLimiter(scope_name, surface)
    if not limiter.allow_request(request, cost=cost):
        raise RateLimited(limiter.retry_after())


def check_mail_to(address: str) -> None:
    """Count a mail to ``address`` (any case) against ``EMMM_MAILS_TO_ADDRESS_RATE``, whoever
    asks for it: RateLimited when over. The key is a keyed digest: no address in the cache.

    Whoever fills an address's allowance with reset requests has sent it that many working
    reset links (each valid until used or the password changes), so its owner is not locked
    out; keyed per requester too, it would not stop one inbox being flooded from many networks."""
    if not settings.EMMM_RATELIMIT_ENABLE:
        return
    limiter = SimpleRateThrottle.__new__(SimpleRateThrottle)  # its rate parser and clock, no scope
    limit, duration = limiter.parse_rate(settings.EMMM_MAILS_TO_ADDRESS_RATE)
    digest = salted_hmac("imagehost.ratelimits.mail-to", address.strip().casefold(), algorithm="sha256").hexdigest()
    wait = take(f"throttle_mails_to_{digest}", limiter.timer(), duration, limit, 1)
    if wait is not None:
        raise RateLimited(max(1, math.ceil(wait)))


def rate_limited(scope_name: str, *, methods: tuple[str, ...] | None = None):
    """View decorator for the site: count requests (of ``methods``, default all) against a scope."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if methods is None or request.method in methods:
                check(request, scope_name)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


class LoginRateLimitedBackend(ModelBackend):
    """Django's ModelBackend behind the ``logins`` scope: the limit sits on the password check,
    not on one URL, so no login page (the admin's ``/admin/login/`` included) takes unlimited
    guesses. A check with no request (``manage.py``, the test client's ``login``) is not counted."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None:
            check(request, "logins")
        return super().authenticate(request, username=username, password=password, **kwargs)
