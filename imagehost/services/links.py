"""Short links: ``/s/<slug>`` stands for a token (one per owner and token)."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import ShortLink
from .errors import InvalidInput, LinkExpired, NotFound, ServiceError, SlugTaken, TokenBlocked
from . import cache as serving_cache
from .tokens import checked_token_sha256

CUSTOM_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$")
#: Every slug that can exist (generated ones are token_urlsafe; custom ones CUSTOM_SLUG_RE).
SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def get_or_create_short_link(
    token: str, owner: Any = None, slug: str | None = None, expires_at: datetime | None = None
) -> ShortLink:
    """Return the owner's short link for a token, creating it if needed.

    The same owner (or anonymous) shortening the same token again gets the same link.
    ``slug`` and ``expires_at`` are for signed-in users only (400 otherwise): the anonymous
    link of a token is shared by everyone, so no later request may change it. ``slug`` asks
    for a custom slug (SlugTaken, 409, if used); ``expires_at`` sets or refreshes the expiry
    of the owner's own link.
    """
    if owner is not None and not getattr(owner, "is_authenticated", False):
        owner = None
    sha = checked_token_sha256(token)
    if slug is not None:
        if owner is None:
            raise InvalidInput("Sign in to choose a custom short link.")
        if not CUSTOM_SLUG_RE.match(slug):
            raise InvalidInput("A custom slug has 3-40 characters: letters, digits, '-' and '_'.")
    if expires_at is not None and owner is None:
        raise InvalidInput("Sign in to set an expiry: an anonymous short link is shared and never changes.")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry must be in the future.")
    owner_q = Q(owner=owner) if owner is not None else Q(owner__isnull=True)
    existing = ShortLink.objects.filter(owner_q, token_sha256=sha).first()
    if existing is not None:
        if slug is not None and slug != existing.slug:
            raise SlugTaken(f"You already have a short link for this image: /s/{existing.slug}")
        if owner is not None and (expires_at is not None or (existing.expires_at and existing.expires_at <= timezone.now())):
            existing.expires_at = expires_at
            existing.save(update_fields=["expires_at"])
        return existing
    for _ in range(5):
        candidate = slug or secrets.token_urlsafe(9)
        try:
            with transaction.atomic():
                return ShortLink.objects.create(slug=candidate, token=token, owner=owner, expires_at=expires_at)
        except IntegrityError:
            existing = ShortLink.objects.filter(owner_q, token_sha256=sha).first()
            if existing is not None:  # a concurrent request created it
                return existing
            if slug is not None:
                raise SlugTaken(f"The short link /s/{slug} is taken; choose another.") from None
    raise ServiceError("Could not create a short link; please try again.", status=503)


@dataclass(frozen=True)
class ResolvedLink:
    """A live short link as the serving path sees it (from the cache; no model instance, no token)."""

    pk: int
    slug: str
    token_sha256: str

    @property
    def token(self) -> str:
        """The token itself (one query: only needed to decode, or for the link's page)."""
        token = ShortLink.objects.filter(pk=self.pk).values_list("token", flat=True).first()
        if token is None:
            raise NotFound("No such short link.")
        return token


def resolve_short_link(slug: str, *, count_hit: bool = True) -> ResolvedLink:
    """Find a live short link: NotFound (404), LinkExpired or TokenBlocked (410).

    No database access when the look-up is cached (``services/cache.py``); the hit is
    counted outside the database and flushed in batches.
    """
    link = serving_cache.lookup_link(slug) if SLUG_RE.match(slug) else None
    if link is None:
        raise NotFound("No such short link.")
    if serving_cache.is_blocked(link.token_sha256):
        raise TokenBlocked("This image has been taken down.")
    if link.expires_at is not None and link.expires_at <= timezone.now().timestamp():
        raise LinkExpired("This short link has expired.")
    if count_hit:
        serving_cache.count_hit(link.pk)
    return ResolvedLink(link.pk, slug, link.token_sha256)


def delete_short_link(link: ShortLink, *, owner: Any) -> None:
    """Delete one of the owner's short links."""
    if link.owner_id is None or link.owner_id != owner.pk:
        raise NotFound("No such short link.")
    link.delete()
