"""How far a link must travel: an upload's length budget (``max_chars`` from a place's URL limit).

A budget names a place that carries links; the encoder gets ``max_chars`` so that the whole
token URL (``https://host/i/`` + token) fits that place, coding it with the finest step that
fits (a small picture may get more detail than without one). "No length limit" (``best``, its
API value) sets no bound: the token is as long as the default quantisation makes it.
"""
from __future__ import annotations

from django.db import models


class LinkBudget(models.TextChoices):
    CHAT = "chat", "Fits chat apps (~4,000 characters)"
    PROXY = "proxy", "Fits proxies (~8,000 characters)"
    BEST = "best", "No length limit (a longer link)"


URL_LIMITS: dict[str, int | None] = {LinkBudget.CHAT: 4000, LinkBudget.PROXY: 8000, LinkBudget.BEST: None}


def max_chars_for_budget(budget: str | None, token_url_prefix: str) -> int | None:
    """``max_chars`` for the encoder so that ``token_url_prefix + token`` fits ``budget``.

    None (no bound) for "best" or no budget. The prefix is the absolute URL up to the token.
    """
    limit = URL_LIMITS.get(budget or LinkBudget.BEST)
    return None if limit is None else limit - len(token_url_prefix)
