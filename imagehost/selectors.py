"""Queries: read-only look-ups used by the site views and the REST API."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.cache import cache
from django.db.models import Case, Count, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import (
    ALBUM_SLUG_RE, SLUG_RE, TOKEN_IDENTITY_RE, Album, BlockedToken, EncodeJob, JobStatus, Picture, PictureEmbedding, ShortLink, Visibility,
    deletion_digest, token_sha256,
)
from .services.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class AccountContents:
    """What deleting an account deletes with it (counts, for the confirmation page)."""

    pictures: int
    albums: int
    short_links: int
    api_tokens: int


def account_contents(user: Any) -> AccountContents:
    """How many pictures, albums, short links and API tokens ``user`` has."""
    return AccountContents(
        pictures=Picture.objects.filter(owner=user).count(),
        albums=Album.objects.filter(owner=user).count(),
        short_links=ShortLink.objects.filter(owner=user).count(),
        api_tokens=user.api_tokens.filter(revoked_at__isnull=True).count(),
    )


def _jobs_to_show() -> QuerySet[EncodeJob]:
    """Encode jobs as the result pages and the API show them: never their uploaded original
    (``source``, up to 10 MB, read only by the worker's claim), with their owner,
    ``reserved_slug`` (the slug of ``reserved_link_for_job``, or None) and, for a queued job,
    ``queue_ahead`` (``queue_place``'s count of unfinished jobs uploaded before it)."""
    reserved = ShortLink.objects.filter(job=OuterRef("pk")).order_by("pk").values("slug")[:1]
    ahead = (
        EncodeJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], created__lt=OuterRef("created"))
        .order_by().annotate(n=Func(F("pk"), function="COUNT", output_field=IntegerField())).values("n")
    )  # COUNT as a plain function: one row, no GROUP BY
    return (
        EncodeJob.objects.defer("source").select_related("owner")
        .annotate(
            reserved_slug=Subquery(reserved),
            queue_ahead=Case(When(status=JobStatus.QUEUED, then=Coalesce(Subquery(ahead), 0)), default=None),
        )
    )


def _with_pictures_to_show(jobs: list[EncodeJob]) -> list[EncodeJob]:
    """``jobs``, each with its picture read (one query for them all) as the result pages and
    the API show it: with its owner, album, ``taken_down``, ``link_slug`` and stored embedding
    (with its near duplicate)."""
    ids = [job.picture_id for job in jobs if job.picture_id is not None]
    if ids:
        pictures = with_link_slugs(with_takedowns(Picture.objects.filter(pk__in=ids)))
        pictures = pictures.select_related("owner", "album", "embedding__duplicate_of").defer("embedding__vector")
        found = pictures.in_bulk(ids)
        for job in jobs:
            if job.picture_id is not None:
                job.picture = found.get(job.picture_id)  # None: deleted a moment ago
    return jobs


def get_job(job_id: UUID | str) -> EncodeJob:
    """An encode job by id (the UUID is the capability: anyone holding it may see it)."""
    try:
        job = _jobs_to_show().get(pk=job_id)
    except (EncodeJob.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such upload job.") from None
    return _with_pictures_to_show([job])[0]


def jobs_by_ids(job_ids: list[str]) -> list[EncodeJob]:
    """Jobs for a list of ids, in the order given; unknown ids are skipped. A fixed number of
    queries however many jobs (``_jobs_to_show``, ``_with_pictures_to_show``)."""
    valid = []
    for raw in job_ids:
        try:
            valid.append(UUID(str(raw)))
        except ValueError:
            continue
    found = {j.pk: j for j in _jobs_to_show().filter(pk__in=valid)}
    return _with_pictures_to_show([found[i] for i in valid if i in found])


def with_takedowns(pictures: QuerySet[Picture]) -> QuerySet[Picture]:
    """``pictures``, each with ``taken_down``: whether its token is blocked (its URLs answer 410)."""
    return pictures.annotate(taken_down=Exists(BlockedToken.objects.filter(token_sha256=OuterRef("token_sha256"))))


def not_taken_down(pictures: QuerySet[Picture]) -> QuerySet[Picture]:
    """``pictures`` less the taken-down ones (blocked tokens)."""
    return pictures.exclude(token_sha256__in=BlockedToken.objects.values("token_sha256"))


def pictures_for_owner(owner: Any, *, title_contains: str = "") -> QuerySet[Picture]:
    """The owner's library, newest first, with ``taken_down``; ``title_contains``: only titles
    containing it (any case)."""
    pictures = with_takedowns(Picture.objects.filter(owner=owner)).select_related("album").order_by("-created", "-id")
    title_contains = title_contains.strip()
    return pictures.filter(title__icontains=title_contains) if title_contains else pictures


def get_picture_for_owner(pk: int, owner: Any) -> Picture:
    """One of the owner's pictures (with ``taken_down``), else NotFound."""
    picture = with_takedowns(Picture.objects.filter(pk=pk, owner=owner)).select_related("album").first()
    if picture is None:
        raise NotFound("No such picture.")
    return picture


def albums_for_owner(owner: Any, *, with_counts: bool = False) -> QuerySet[Album]:
    """The owner's albums by title; ``with_counts``: each with ``owners_picture_count``, how many
    pictures it holds as its owner sees them (``album_pictures`` for the owner: all of them,
    taken-down ones too)."""
    albums = Album.objects.filter(owner=owner).select_related("owner").order_by("title", "pk")
    if not with_counts:
        return albums
    count = Picture.objects.filter(album_id=OuterRef("pk")).order_by().values("album_id").annotate(n=Count("pk")).values("n")
    return albums.annotate(owners_picture_count=Coalesce(Subquery(count), 0))


def get_album_for_owner(slug: str, owner: Any) -> Album:
    """One of ``owner``'s albums by its slug (any client-sent text); NotFound otherwise."""
    album = Album.objects.filter(slug=slug, owner=owner).first() if ALBUM_SLUG_RE.match(slug) else None
    if album is None:
        raise NotFound("No such album.")
    return album


def album_to_upload_into(slug: str, uploader: Any) -> Album | None:
    """The album an upload names (``slug``, any client-sent text; empty: none): one of the
    uploader's own. InvalidInput when nobody is signed in, NotFound for any other slug."""
    if not slug:
        return None
    if uploader is None or not getattr(uploader, "is_authenticated", False):
        raise InvalidInput("Sign in to upload into an album.", field="album")
    return get_album_for_owner(slug, uploader)


def get_album_for_viewer(slug: str, viewer: Any) -> Album:
    """An album that ``viewer`` may see: their own, or any unlisted/public one. Private: NotFound."""
    album = Album.objects.filter(slug=slug).select_related("owner").first() if ALBUM_SLUG_RE.match(slug) else None
    if album is None:
        raise NotFound("No such album.")
    if album.visibility == Visibility.PRIVATE and not album.is_owned_by(viewer):
        raise NotFound("No such album.")
    return album


def album_pictures(album: Album, viewer: Any) -> QuerySet[Picture]:
    """An album's pictures in their set order, with ``taken_down``: all of them for its owner,
    the ones not taken down for anyone else."""
    pictures = album.pictures.order_by("position", "created", "pk")
    return with_takedowns(pictures if album.is_owned_by(viewer) else not_taken_down(pictures))


def _shareable(links: QuerySet[ShortLink]) -> QuerySet[ShortLink]:
    """The live ones of ``links`` (no expiry, or not yet expired), the one to share first:
    permanent before expiring, then the newest."""
    live = links.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    return live.order_by(F("expires_at").desc(nulls_first=True), "-created")


def _not_reserved_for_another_picture(picture_pk: Any) -> Q:
    """Links that stay while this picture does: none reserved for another picture's upload (the
    same file uploaded twice), which goes when that picture is deleted (``links_deleted_with``)."""
    return Q(job__isnull=True) | Q(job__picture__isnull=True) | Q(job__picture=picture_pk)


def with_link_slugs(pictures: QuerySet[Picture]) -> QuerySet[Picture]:
    """``pictures``, each with ``link_slug``: the slug of the short link to share for it, or None,
    in the same query (``short_link_for(picture.token, picture.owner, picture=picture)``: the
    owner's live link of that token, ``_shareable`` first, none reserved for another copy of the
    picture; for an anonymous picture, the shared anonymous link). ``link_slug_of`` reads it."""
    owners = ShortLink.objects.filter(owner_id=OuterRef("owner_id"), token_sha256=OuterRef("token_sha256"))
    owners = owners.filter(_not_reserved_for_another_picture(OuterRef("pk")))
    anonymous = ShortLink.objects.filter(owner__isnull=True, token_sha256=OuterRef("token_sha256"))
    return pictures.annotate(link_slug=Case(
        When(owner__isnull=True, then=Subquery(_shareable(anonymous).values("slug")[:1])),
        default=Subquery(_shareable(owners).values("slug")[:1]),
    ))


def link_slug_of(picture: Picture) -> str | None:
    """The slug of the short link to share for ``picture`` (``short_link_for``), or None: its
    ``with_link_slugs`` annotation, else looked up once and kept on the picture."""
    if not hasattr(picture, "link_slug"):
        link = short_link_for(picture.token, picture.owner, picture=picture, sha256=picture.token_sha256)
        picture.link_slug = link.slug if link else None
    return picture.link_slug


def album_pictures_with_links(album: Album, viewer: Any) -> QuerySet[Picture]:
    """``album_pictures``, each also with ``link_slug`` (``with_link_slugs``)."""
    return with_link_slugs(album_pictures(album, viewer))


def public_albums() -> QuerySet[Album]:
    """Public albums, newest first, each with ``picture_count`` and ``cover_sha256`` (its first
    picture's ``token_sha256``, or None when empty); taken-down pictures neither count nor make
    a cover."""
    shown = not_taken_down(Picture.objects.filter(album_id=OuterRef("pk")))
    count = shown.order_by().values("album_id").annotate(n=Count("pk")).values("n")
    first = shown.order_by("position", "created", "pk")
    return (
        Album.objects.filter(visibility=Visibility.PUBLIC).select_related("owner").order_by("-created", "-pk")
        .annotate(
            picture_count=Coalesce(Subquery(count), 0),
            cover_sha256=Subquery(first.values("token_sha256")[:1]),
        )
    )


def short_link_for(
    token: str, owner: Any = None, *, picture: Picture | None = None, sha256: str | None = None
) -> ShortLink | None:
    """The owner's (or the anonymous) short link to share for a token (``_shareable``), if a live
    one exists; for one of the owner's ``picture``, none reserved for another copy of it.
    ``sha256``: the token's stored ``token_sha256``, when the caller has it (not computed again)."""
    qs = ShortLink.objects.filter(token_sha256=sha256 or token_sha256(token))
    if owner is not None and getattr(owner, "is_authenticated", False):
        qs = qs.filter(owner=owner)
        if picture is not None and picture.owner_id == owner.pk:
            qs = qs.filter(_not_reserved_for_another_picture(picture.pk))
        return _shareable(qs).first()
    return _shareable(qs.filter(owner__isnull=True)).first()


def get_short_link(slug: str) -> ShortLink:
    """A short link by slug, live or not (for its owner to manage), else NotFound."""
    link = ShortLink.objects.filter(slug=slug).first() if SLUG_RE.match(slug) else None
    if link is None:
        raise NotFound("No such short link.")
    return link


def short_links_for_owner(owner: Any) -> QuerySet[ShortLink]:
    """The owner's links, newest first, with their upload's job (never its original: ``source``)."""
    return ShortLink.objects.filter(owner=owner).select_related("job").defer("job__source").order_by("-created", "-pk")


def short_links_for_picture(picture: Picture) -> QuerySet[ShortLink]:
    """A picture's links: its owner's links to its token (for an anonymous picture, the shared
    anonymous link when an upload made it, not when a person shortened the token) and any still
    reserved for the upload that made it, newest first."""
    owner_q = Q(owner_id=picture.owner_id) if picture.owner_id else Q(owner__isnull=True, job__isnull=False)
    reserved = Q(job__picture=picture) if picture.pk else Q(pk__in=[])
    return ShortLink.objects.filter((owner_q & Q(token_sha256=picture.token_sha256)) | reserved).order_by("-created", "-pk")


def links_deleted_with(picture: Picture) -> QuerySet[ShortLink]:
    """The links ``library.delete_picture`` deletes with a picture: all of
    ``short_links_for_picture``, but while another of the owner's pictures (for an anonymous
    picture, another anonymous upload) has the same token, only those reserved for this
    picture's own upload (the others are that picture's links too)."""
    doomed = short_links_for_picture(picture)
    twins = Picture.objects.filter(owner_id=picture.owner_id, token_sha256=picture.token_sha256).exclude(pk=picture.pk)
    if twins.exists():
        doomed = doomed.filter(job__picture=picture, owner__isnull=False)
    return doomed


def reserved_link_for_job(job: EncodeJob) -> ShortLink | None:
    """The short link reserved for an upload (signed-in uploads have one from the start)."""
    return ShortLink.objects.filter(job=job).order_by("pk").first()


def reserved_slug_of(job: EncodeJob) -> str | None:
    """The slug of ``reserved_link_for_job``, or None: read with the job (``_jobs_to_show``),
    else looked up."""
    if hasattr(job, "reserved_slug"):
        return job.reserved_slug
    link = reserved_link_for_job(job)
    return link.slug if link else None


def job_for_deletion_key(raw_key: str) -> EncodeJob:
    """The upload a secret deletion key belongs to (an unused key), else NotFound."""
    if not raw_key or len(raw_key) > 100:
        raise NotFound("No such upload, or it has been deleted already.")
    job = (
        EncodeJob.objects.defer("source").select_related("picture")
        .filter(deletion_digest=deletion_digest(raw_key)).first()
    )
    if job is None:
        raise NotFound("No such upload, or it has been deleted already.")
    return job



def _owners_done_job(job: EncodeJob, viewer: Any) -> bool:
    return (
        job.status == JobStatus.DONE and job.picture_id is not None and job.owner_id is not None
        and viewer is not None and getattr(viewer, "is_authenticated", False) and viewer.pk == job.owner_id
    )


def _stored_embedding(job: EncodeJob) -> PictureEmbedding | None:
    """The vector row of the job's picture (with ``duplicate_of``), or None: the one read with
    the picture (``_with_pictures_to_show``), else looked up."""
    picture = job.picture if EncodeJob.picture.is_cached(job) else None
    if picture is not None and Picture.embedding.is_cached(picture):
        return getattr(picture, "embedding", None)  # None: it has no vector (cached as such)
    return PictureEmbedding.objects.filter(picture_id=job.picture_id).select_related("duplicate_of").first()


def near_duplicate_of(job: EncodeJob, viewer: Any) -> PictureEmbedding | None:
    """For the job's signed-in owner: the stored "you already have this picture" match
    (``.duplicate_of``, ``.duplicate_score``), else None. Nobody else ever sees it."""
    if not _owners_done_job(job, viewer):
        return None
    row = _stored_embedding(job)
    if row is None or row.duplicate_of is None or row.duplicate_of.owner_id != viewer.pk:
        return None
    return row


def awaiting_embedding(job: EncodeJob, viewer: Any, *, within_s: float = 15.0) -> bool:
    """The owner's job finished moments ago and the worker has not stored its vector yet
    (result pages keep offering to check again so the near-duplicate notice can appear)."""
    if not _owners_done_job(job, viewer) or job.finished is None:
        return False
    fresh = (timezone.now() - job.finished).total_seconds() < within_s
    return fresh and _stored_embedding(job) is None


RECENT_ENCODES = 20
MEAN_ENCODE_CACHE_S = 15


def mean_encode_seconds(kind: str) -> float | None:
    """Mean wall time of the last ``RECENT_ENCODES`` finished encodes of ``kind`` (any kind when
    there are none), or None with no history. Cached for a few seconds: every poll asks."""
    key = f"emmm:mean-encode:{kind}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    mean = None
    for filters in ({"kind": kind}, {}):
        spans = list(
            EncodeJob.objects.filter(status=JobStatus.DONE, started__isnull=False, finished__isnull=False, **filters)
            .order_by("-created").values_list("started", "finished")[:RECENT_ENCODES]
        )
        if spans:
            mean = sum(max(0.0, (end - start).total_seconds()) for start, end in spans) / len(spans)
            break
    cache.set(key, mean or 0.0, MEAN_ENCODE_CACHE_S)
    return mean


@dataclass(frozen=True)
class QueuePlace:
    """Where an unfinished job stands: jobs ahead of it and a rough wait (None: no history yet)."""

    ahead: int
    estimate_s: float | None


def queue_place(job: EncodeJob) -> QueuePlace | None:
    """For a queued or running job: unfinished jobs uploaded before it, and an estimate of the
    time to done (those jobs one after another, then this one, at the recent mean encode time).
    None for a finished job. Fair order may move a job ahead of an owner's earlier batch, so
    ``ahead`` is an upper bound."""
    if job.is_finished:
        return None
    mean = mean_encode_seconds(job.kind)
    if job.status == JobStatus.RUNNING:
        elapsed = (timezone.now() - job.started).total_seconds() if job.started else 0.0
        return QueuePlace(0, None if mean is None else max(1.0, mean - elapsed))
    ahead = getattr(job, "queue_ahead", None)  # read with the job (``_jobs_to_show``)
    if ahead is None:
        ahead = EncodeJob.objects.filter(
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING], created__lt=job.created
        ).count()
    return QueuePlace(ahead, None if mean is None else (ahead + 1) * mean)


def stored_token(identity: str) -> str | None:
    """The token whose identity (``token_sha256``, 64 hex digits) is ``identity``, while a
    picture or a filled short link that has not expired holds it; else None."""
    if not TOKEN_IDENTITY_RE.fullmatch(identity):
        return None
    held = Picture.objects.filter(token_sha256=identity).values_list("token", flat=True).first()
    live = ShortLink.objects.filter(token_sha256=identity).exclude(token="")
    live = live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    return held or live.values_list("token", flat=True).first()


def picture_for_short_link(link_pk: int) -> Picture | None:
    """The picture a short link shows, for its title: the picture of the upload it was made for
    (``ShortLink.job``: an upload's reserved link, or a link made on a picture's page) while
    that picture is there, else the link owner's oldest picture of that token; None for the
    shared anonymous link of a token (anyone who uploads or shortens that token gets the same
    link, so it shows no uploader's title) and when the owner has no such picture."""
    link = ShortLink.objects.filter(pk=link_pk).values("owner_id", "token_sha256", "job__picture_id").first()
    if link is None or link["owner_id"] is None:
        return None
    owners = Picture.objects.filter(token_sha256=link["token_sha256"], owner_id=link["owner_id"])
    made_for = owners.filter(pk=link["job__picture_id"]).first() if link["job__picture_id"] else None
    return made_for or owners.order_by("created", "pk").first()


def coded_size(token: str) -> tuple[int, int] | None:
    """The size a token's picture was coded at (smaller than its shown size when a length
    budget made the encoder shrink it; 16 for a side under 16 pixels), from the header only;
    None for an unreadable token."""
    import codec  # lazy: the codec imports torch

    try:
        info = codec.inspect(token)
    except codec.CodecError:
        return None
    return info.coded_width, info.coded_height
