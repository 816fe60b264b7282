"""Short links: ``/s/<slug>`` stands for a token (several per owner; one shared anonymous link per token)."""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import SLUG_RE, EncodeJob, JobStatus, ShortLink
from .errors import (
    InvalidInput, LinkExpired, LinkFailed, LinkPending, NotFound, ServiceError, SlugTaken, TokenBlocked,
)
from . import cache as serving_cache
from .rows import lock_or_not_found
from .tokens import checked_token_sha256

NO_LINK = "No such short link."
CUSTOM_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$")
_ALNUM = string.ascii_letters + string.digits


def new_slug() -> str:
    """A generated slug: 12 URL-safe characters, the first a letter or digit (about 71 random bits)."""
    return secrets.choice(_ALNUM) + secrets.token_urlsafe(9)[1:]


def get_or_create_short_link(
    token: str, owner: Any = None, slug: str | None = None, expires_at: datetime | None = None,
    *, made_for: EncodeJob | None = None,
) -> ShortLink:
    """Return a short link for a token, creating it if needed.

    Without ``slug``, the same owner shortening the same token again with the same
    ``expires_at`` gets the same link: with none, their newest permanent link; with one, their
    link of exactly that expiry, else a new one beside the others (no other link is changed,
    and an expired one is never revived). Anonymous requests share one permanent link per
    token. ``slug`` and ``expires_at`` are for signed-in users only (400 otherwise): the
    anonymous link of a token is shared by everyone, so no later request may change it.
    ``slug`` names a custom link beside the owner's others (the same slug again returns it:
    with ``expires_at`` its expiry becomes that, without one it keeps its expiry unless it has
    expired, then it becomes permanent again; SlugTaken, 409, when someone else's link or
    another token has it). An expiry must be in the future and storable (400). ``made_for``: the
    upload the link is for, recorded on it when this call creates it: the upload whose
    completion asks for the link (an anonymous upload's deletion link may delete a shared link
    an upload made, never one a person made), or the upload of the picture whose page asks for
    it (the link's page then shows that picture's title; without ``slug``, a signed-in owner's
    link reserved for another copy of the picture, the same file uploaded again, is never
    returned for it).
    """
    if owner is not None and not getattr(owner, "is_authenticated", False):
        owner = None
    sha = checked_token_sha256(token)
    if slug is not None:
        if owner is None:
            raise InvalidInput("Sign in to choose a custom short link.", field="slug")
        if not SLUG_RE.match(slug):  # a new custom one is checked more strictly below
            raise InvalidInput("A custom slug has 3-40 characters: letters, digits, '-' and '_'.", field="slug")
    if expires_at is not None and owner is None:
        raise InvalidInput("Sign in to set an expiry: an anonymous short link is shared and never changes.", field="expires_at")
    if expires_at is not None:
        check_expiry(expires_at)
    owner_q = Q(owner=owner) if owner is not None else Q(owner__isnull=True)
    mine = ShortLink.objects.filter(owner_q, token_sha256=sha)
    if slug is None:  # the same expiry (None: permanent), so no other link is touched
        mine = mine.filter(expires_at=expires_at) if expires_at is not None else mine.filter(expires_at__isnull=True)
        if owner is not None and made_for is not None:  # not another copy's (the anonymous link is shared)
            mine = mine.filter(Q(job__isnull=True) | Q(job=made_for) | Q(job__picture__isnull=True))
    existing = mine.filter(slug=slug).first() if slug is not None else mine.first()
    if existing is not None:
        if slug is not None and (expires_at is not None or (existing.expires_at and existing.expires_at <= timezone.now())):
            with transaction.atomic():
                lock_or_not_found(ShortLink, existing.pk, NO_LINK)
                existing.expires_at = expires_at
                existing.save(update_fields=["expires_at"])
        return existing
    if slug is not None and not CUSTOM_SLUG_RE.match(slug):  # the owner's own slugs name their links; a new one:
        if ShortLink.objects.filter(slug=slug).exists():
            raise SlugTaken(f"The short link /s/{slug} is taken; choose another.")
        raise InvalidInput("A custom slug has 3-40 characters: letters, digits, '-' and '_'.", field="slug")
    for _ in range(5):
        candidate = slug or new_slug()
        try:
            with transaction.atomic():
                if owner is not None and slug is None:  # no unique constraint: concurrent requests queue here
                    list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True))
                    existing = mine.first()
                    if existing is not None:
                        return existing
                return ShortLink.objects.create(
                    slug=candidate, token=token, owner=owner, expires_at=expires_at, job=made_for
                )
        except IntegrityError:
            if slug is not None:
                raise SlugTaken(f"The short link /s/{slug} is taken; choose another.") from None
            if owner is None:  # a concurrent request created the shared anonymous link
                existing = mine.first()
                if existing is not None:
                    return existing
    raise ServiceError("Could not create a short link; please try again.", status=503)


def check_expiry(expires_at: datetime) -> None:
    """InvalidInput (400) unless ``expires_at`` is in the future and the database can store it
    (year 9999 at UTC-5 is year 10000 in UTC)."""
    try:
        expires_at.astimezone(dt_timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidInput("The expiry is too far in the future.", field="expires_at") from None
    if expires_at <= timezone.now():
        raise InvalidInput("The expiry must be in the future.", field="expires_at")


# --- links reserved for an upload before its token exists -----------------------------------
def reserve_short_link(job: EncodeJob) -> ShortLink:
    """A link for a signed-in upload, before encoding: "encoding…" until ``fill_reserved_links``."""
    for _ in range(5):
        try:
            with transaction.atomic():
                return ShortLink.objects.create(slug=new_slug(), token="", owner=job.owner, job=job)
        except IntegrityError:
            continue
    raise ServiceError("Could not reserve a short link; please try again.", status=503)


def fill_reserved_links(job: EncodeJob, token: str) -> int:
    """Give the job's reserved links their token (in the job's completing transaction); how many."""
    reserved = list(ShortLink.objects.filter(job=job, token=""))
    for link in reserved:
        link.token = token
        link.save(update_fields=["token", "token_sha256"])  # signals drop the cached "reserved" look-up
    return len(reserved)


@dataclass(frozen=True)
class ResolvedLink:
    """A live short link as the serving path sees it (from the cache; no model instance, no token)."""

    pk: int
    slug: str
    token_sha256: str
    #: When the link stops working (a Unix time), None for a permanent link.
    expires_at: float | None = None

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
    counted outside the database (with the takedown check, in one round trip to Redis) and
    flushed in batches.
    """
    now = timezone.now().timestamp()
    read = serving_cache.read_link(slug, now, count_hit=count_hit) if SLUG_RE.match(slug) else None
    if read is None or read.link is None:
        raise NotFound("No such short link.")
    link, blocked = read.link, read.blocked
    if blocked is None:  # reserved for an upload: read it afresh (a transient state, one query)
        link = _reserved_link_now(slug, link.pk)
        live = link.expires_at is None or link.expires_at > now
        blocked = serving_cache.is_blocked(link.token_sha256, count_hit_of=link.pk if count_hit and live else None)
    if blocked:
        raise TokenBlocked("This image has been taken down.")
    if link.expires_at is not None and link.expires_at <= now:
        raise LinkExpired("This short link has expired.")
    return ResolvedLink(link.pk, slug, link.token_sha256, link.expires_at)


def _reserved_link_now(slug: str, pk: int) -> serving_cache.CachedLink:
    """A link cached as reserved, from the database: the link once its token is there (the cached
    look-up is dropped, even if another process's invalidation never reached this cache), else
    LinkPending (503, retry), LinkFailed (410: the encoding failed) or NotFound."""
    row = ShortLink.objects.filter(pk=pk).values_list("token_sha256", "expires_at", "job__status", "job__error").first()
    if row is None:
        serving_cache.forget_link(slug)
        raise NotFound("No such short link.")
    sha, expires_at, status, error = row
    if sha:
        serving_cache.forget_link(slug)
        return serving_cache.CachedLink(pk, sha, expires_at.timestamp() if expires_at else None)
    if status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DONE):  # DONE: the token is being filled in
        raise LinkPending("This picture is still being encoded; it will be here in a moment.")
    if status == JobStatus.FAILED:
        raise LinkFailed(f"This upload could not be encoded, so this link will never show a picture. {error}".strip())
    raise NotFound("No such short link.")


def _check_owner(link: ShortLink, owner: Any) -> None:
    if link.owner_id is None or owner is None or link.owner_id != owner.pk:
        raise NotFound("No such short link.")


def delete_short_link(link: ShortLink, *, owner: Any) -> None:
    """Delete one of the owner's short links (it answers 404 from then on)."""
    _check_owner(link, owner)
    link.delete()


def clear_expiry(link: ShortLink, *, owner: Any) -> ShortLink:
    """Make one of the owner's links permanent again (an expired one works again)."""
    _check_owner(link, owner)
    with transaction.atomic():
        lock_or_not_found(ShortLink, link.pk, NO_LINK)
        link.expires_at = None
        link.save(update_fields=["expires_at"])
    return link
