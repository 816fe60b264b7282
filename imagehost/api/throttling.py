"""Per-scope throttles (uploads, decodes, link creation) keyed on the real client address.

The client address is ``REMOTE_ADDR`` unless ``REST_FRAMEWORK["NUM_PROXIES"]`` says how many
trusted reverse proxies sit in front of the app; then it is the address the outermost of
them saw, read from the right-hand end of ``X-Forwarded-For``. A client-supplied header
alone never decides the key. Anonymous clients get the ``<scope>_anon`` rate, signed-in
users the ``<scope>`` rate (per user).
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


def client_ip(request) -> str:
    """The real client address behind ``NUM_PROXIES`` trusted proxies (0 by default)."""
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


class ScopedThrottle(SimpleRateThrottle):
    """A throttle for one scope, with a separate (tighter) rate for anonymous clients."""

    scope: str = ""

    def get_ident(self, request: Request) -> str:
        return client_ip(request)

    def allow_request(self, request: Request, view) -> bool:
        anonymous = not (request.user and request.user.is_authenticated)
        self.scope = f"{type(self).scope}_anon" if anonymous else type(self).scope
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        # Read at request time so that changed settings (and tests) take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def __init__(self) -> None:  # rates are resolved per request in allow_request
        pass


class UploadThrottle(ScopedThrottle):
    scope = "uploads"


class DecodeThrottle(ScopedThrottle):
    scope = "decodes"


class LinkThrottle(ScopedThrottle):
    scope = "links"
