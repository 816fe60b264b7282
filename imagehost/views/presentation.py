"""UI copy: where a link of some length can travel."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings


@dataclass(frozen=True)
class Fit:
    """Whether a URL of some length fits a place that carries links."""

    place: str
    limit: int
    fits: bool


URL_PLACES: tuple[tuple[str, int], ...] = (
    ("Chat apps (~4,000 characters)", 4000),
    ("Common proxies and servers (8,192)", 8192),
    ("This site's limit", 0),  # filled from EMMM_MAX_TOKEN_CHARS
)


def url_places() -> list[dict]:
    """The places and their limits (for the upload page's script)."""
    return [{"place": place, "limit": limit or settings.EMMM_MAX_TOKEN_CHARS} for place, limit in URL_PLACES]


def token_fits(url_length: int) -> list[Fit]:
    """Where a link of ``url_length`` characters can travel."""
    return [Fit(p["place"], p["limit"], url_length <= p["limit"]) for p in url_places()]


def fits_as_dicts(url_length: int) -> list[dict]:
    return [asdict(f) for f in token_fits(url_length)]
