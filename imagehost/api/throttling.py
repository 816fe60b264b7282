"""DRF throttles for the API's scopes; the scopes, rates and keys live in ``imagehost.ratelimits``."""

from __future__ import annotations

from imagehost.ratelimits import ScopeLimiter


class ScopedThrottle(ScopeLimiter):
    """A DRF throttle for one row of ``imagehost.ratelimits.SCOPES`` (API buckets)."""

    scope_name: str = ""

    def __init__(self) -> None:
        super().__init__(self.scope_name, "api")


class UploadThrottle(ScopedThrottle):
    scope_name = "uploads"


class DecodeThrottle(ScopedThrottle):
    scope_name = "decodes"


class LinkThrottle(ScopedThrottle):
    scope_name = "links"


class SlugThrottle(ScopedThrottle):
    """Look-ups by an unguessable slug (albums): guessing is as slow as the rate."""

    scope_name = "slugs"


class SearchThrottle(ScopedThrottle):
    scope_name = "searches"
