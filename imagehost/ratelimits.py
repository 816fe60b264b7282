"""Rate limits: one table of scopes, read by the site's views and the API's throttles alike.

=========  ==============================  ================================  ==============
scope      rate setting (signed in, and    rate setting for anonymous         key
           every site page)                API clients
=========  ==============================  ================================  ==============
uploads    ``EMMM_UPLOAD_RATE``            ``EMMM_API_ANON_UPLOAD_RATE``     ``user_or_ip``
decodes    ``EMMM_DECODE_RATE``            ``EMMM_API_ANON_DECODE_RATE``     ``user_or_ip``
links      ``EMMM_SHORTLINK_RATE``         ``EMMM_API_ANON_LINK_RATE``       ``user_or_ip``
signups    ``EMMM_SIGNUP_RATE``            (same)                            ``client_ip``
logins     ``EMMM_LOGIN_RATE``             (same)                            ``client_ip``
resets     ``EMMM_PASSWORD_RESET_RATE``    (same)                            ``client_ip``
slugs      ``EMMM_SLUG_RATE``              (same)                            ``user_or_ip``
searches   ``EMMM_SEARCH_RATE``            ``EMMM_API_ANON_SEARCH_RATE``     ``user_or_ip``
=========  ==============================  ================================  ==============

``logins`` and ``resets`` count POSTs only; ``slugs`` counts every ``/s/<slug>`` and
``/s/<slug>/`` look-up, so guessing slugs is as slow as the rate.

A rate is ``"<count>/<period>"`` (``s``, ``m``, ``h``, ``d``; DRF's syntax). The engine is
DRF's sliding-window ``SimpleRateThrottle`` (history in the default cache), so
``Retry-After`` follows from the scope's rate. A request may cost several units
(``cost=``: one per uploaded file). The site and the API count in one bucket per scope
(``bucket_name``); only the rate differs for anonymous API clients. A new scope is one row
in ``SCOPES``.
``EMMM_RATELIMIT_ENABLE=0`` turns every limit off.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.http import HttpRequest
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


def client_ip(request: HttpRequest) -> str:
    """The real client address: ``REMOTE_ADDR``, or behind ``EMMM_NUM_PROXIES`` trusted proxies
    the address the outermost of them saw (read from the right of ``X-Forwarded-For``).

    A client-supplied header alone never decides the key.
    """
    meta = request.META
    remote = meta.get("REMOTE_ADDR", "") or ""
    num_proxies = api_settings.NUM_PROXIES or 0
    if num_proxies <= 0:
        return remote
    addrs = [a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if len(addrs) < num_proxies:
        # The request did not pass through all configured proxies: trust only the socket.
        return remote
    return addrs[-num_proxies]


def _is_signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated)


def user_or_ip(request: HttpRequest) -> str:
    """Signed-in users are limited per account, everyone else per client address."""
    return f"user:{request.user.pk}" if _is_signed_in(request) else f"ip:{client_ip(request)}"


def ip_only(request: HttpRequest) -> str:
    return f"ip:{client_ip(request)}"


@dataclass(frozen=True)
class Scope:
    name: str
    rate_setting: str
    anon_api_rate_setting: str
    key: Callable[[HttpRequest], str]

    def rate(self, request: HttpRequest, surface: str) -> str | None:
        """The rate for this request: anonymous API clients get the tighter anonymous rate."""
        name = self.anon_api_rate_setting if surface == "api" and not _is_signed_in(request) else self.rate_setting
        return getattr(settings, name)


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

    def allow_request(self, request: HttpRequest, view=None, cost: int = 1) -> bool:
        if not settings.EMMM_RATELIMIT_ENABLE:
            return True
        self.rate = self.scope_def.rate(request, self.surface)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = f"throttle_{bucket_name(self.scope_def, self.surface)}_{self.scope_def.key(request)}"
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        self.cost = cost
        if len(self.history) + cost > self.num_requests:
            return False
        self.history[:0] = [self.now] * cost
        self.cache.set(self.key, self.history, self.duration)
        return True

    def wait(self) -> float | None:
        """Seconds until enough of the window's units have expired for this request's cost."""
        over = len(self.history) + self.cost - self.num_requests
        if over <= 0:
            return None
        if over > len(self.history):  # costs more than the whole rate: never allowed
            return float(self.duration)
        return max(0.0, self.history[-over] + self.duration - self.now)

    def retry_after(self) -> int:
        """Whole seconds until the request would be allowed (at least 1)."""
        return max(1, math.ceil(self.wait() or 1))


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
