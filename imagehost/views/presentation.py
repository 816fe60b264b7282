"""UI copy: where a link of some length can travel."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import codec
from codec.limits import MAX_CODED_PIXELS, MAX_SIDE
from django.conf import settings

from ..budgets import URL_LIMITS, LinkBudget


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


#: The figures are the README's budget table (kodim01, token format v2).
BUDGET_HINTS: dict[str, str] = {
    LinkBudget.CHAT: "The token URL stays under 4,000 characters (Slack, Telegram, Discord Nitro, most forums). "
    "A photo is coded much smaller to fit (a 768×512 photo: at 225×150, shown at 627×418), with less detail; "
    "a small picture may use the room for more detail than with no limit.",
    LinkBudget.PROXY: "Under 8,000 characters: passes common proxies and web servers (8,192). A 768×512 photo: "
    "coded at 320×213.",
    LinkBudget.BEST: "No length bound: the standard quality at the stored size. A photo's token URL can be 30,000 "
    "characters or more; the short link fits anywhere either way.",
}


def budget_choices() -> list[dict]:
    """The link budgets for the upload form: value, label, URL limit and what it means."""
    return [
        {"value": value, "label": label, "limit": URL_LIMITS[value], "hint": BUDGET_HINTS[value]}
        for value, label in LinkBudget.choices
    ]


def size_rule() -> dict:
    """How uploads are sized (for the form's text and its script): at most ``max_pixels``, and
    two worked examples from the codec's own rule."""
    return {
        "max_pixels": min(codec.DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS),
        "max_side": MAX_SIDE,
        "examples": [{"from": f"{w}×{h}", "to": "×".join(map(str, codec.stored_size(w, h)))} for w, h in ((768, 512), (4000, 3000))],
    }
