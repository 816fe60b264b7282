"""Queries: read-only look-ups used by the site views and the REST API."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import (
    Album, EncodeJob, JobStatus, Picture, PictureEmbedding, ShortLink, Visibility, deletion_digest, token_sha256,
)
from .services.errors import NotFound


def get_job(job_id: UUID | str) -> EncodeJob:
    """An encode job by id (the UUID is the capability: anyone holding it may see it)."""
    try:
        return EncodeJob.objects.select_related("picture").get(pk=job_id)
    except (EncodeJob.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such upload job.") from None


def jobs_by_ids(job_ids: list[str]) -> list[EncodeJob]:
    """Jobs for a list of ids, in the order given; unknown ids are skipped."""
    valid = []
    for raw in job_ids:
        try:
            valid.append(UUID(str(raw)))
        except ValueError:
            continue
    found = {j.pk: j for j in EncodeJob.objects.select_related("picture").filter(pk__in=valid)}
    return [found[i] for i in valid if i in found]


def pictures_for_owner(owner: Any, *, title_contains: str = "") -> QuerySet[Picture]:
    """The owner's library, newest first; ``title_contains``: only titles containing it (any case)."""
    pictures = Picture.objects.filter(owner=owner).select_related("album").order_by("-created", "-id")
    title_contains = title_contains.strip()
    return pictures.filter(title__icontains=title_contains) if title_contains else pictures


def get_picture_for_owner(pk: int, owner: Any) -> Picture:
    """One of the owner's pictures, else NotFound."""
    picture = Picture.objects.filter(pk=pk, owner=owner).select_related("album").first()
    if picture is None:
        raise NotFound("No such picture.")
    return picture


def albums_for_owner(owner: Any) -> QuerySet[Album]:
    return Album.objects.filter(owner=owner).order_by("title", "pk")


def get_album_for_owner(slug: str, owner: Any) -> Album:
    album = Album.objects.filter(slug=slug, owner=owner).first()
    if album is None:
        raise NotFound("No such album.")
    return album


def get_album_for_viewer(slug: str, viewer: Any) -> Album:
    """An album that ``viewer`` may see: their own, or any unlisted/public one. Private: NotFound."""
    album = Album.objects.filter(slug=slug).select_related("owner").first()
    if album is None:
        raise NotFound("No such album.")
    if album.visibility == Visibility.PRIVATE and not album.is_owned_by(viewer):
        raise NotFound("No such album.")
    return album


def album_pictures(album: Album) -> QuerySet[Picture]:
    """An album's pictures in their set order."""
    return album.pictures.order_by("position", "created", "pk")


def public_albums() -> QuerySet[Album]:
    return Album.objects.filter(visibility=Visibility.PUBLIC).select_related("owner").order_by("-created")


def short_link_for(token: str, owner: Any = None) -> ShortLink | None:
    """The owner's (or the anonymous) short link for a token, if one exists."""
    qs = ShortLink.objects.filter(token_sha256=token_sha256(token))
    if owner is not None and getattr(owner, "is_authenticated", False):
        return qs.filter(owner=owner).first()
    return qs.filter(owner__isnull=True).first()


def get_short_link(slug: str) -> ShortLink:
    """A short link by slug, live or not (for its owner to manage), else NotFound."""
    link = ShortLink.objects.filter(slug=slug).first()
    if link is None:
        raise NotFound("No such short link.")
    return link


def short_links_for_owner(owner: Any) -> QuerySet[ShortLink]:
    return ShortLink.objects.filter(owner=owner).order_by("-created")


def short_links_for_picture(picture: Picture) -> QuerySet[ShortLink]:
    """A picture's links: its owner's links to its token (the anonymous ones for an anonymous
    picture) and any still reserved for the upload that made it, newest first."""
    owner_q = Q(owner_id=picture.owner_id) if picture.owner_id else Q(owner__isnull=True)
    reserved = Q(job__picture=picture) if picture.pk else Q(pk__in=[])
    return ShortLink.objects.filter((owner_q & Q(token_sha256=picture.token_sha256)) | reserved).order_by("-created", "-pk")


def reserved_link_for_job(job: EncodeJob) -> ShortLink | None:
    """The short link reserved for an upload (signed-in uploads have one from the start)."""
    return ShortLink.objects.filter(job=job).order_by("pk").first()


def job_for_deletion_key(raw_key: str) -> EncodeJob:
    """The upload a secret deletion key belongs to (an unused key), else NotFound."""
    if not raw_key or len(raw_key) > 100:
        raise NotFound("No such upload, or it has been deleted already.")
    job = EncodeJob.objects.select_related("picture").filter(deletion_digest=deletion_digest(raw_key)).first()
    if job is None:
        raise NotFound("No such upload, or it has been deleted already.")
    return job



def _owners_done_job(job: EncodeJob, viewer: Any) -> bool:
    return (
        job.status == JobStatus.DONE and job.picture_id is not None and job.owner_id is not None
        and viewer is not None and getattr(viewer, "is_authenticated", False) and viewer.pk == job.owner_id
    )


def near_duplicate_of(job: EncodeJob, viewer: Any) -> PictureEmbedding | None:
    """For the job's signed-in owner: the stored "you already have this picture" match
    (``.duplicate_of``, ``.duplicate_score``), else None. Nobody else ever sees it."""
    if not _owners_done_job(job, viewer):
        return None
    row = PictureEmbedding.objects.filter(picture_id=job.picture_id).select_related("duplicate_of").first()
    if row is None or row.duplicate_of is None or row.duplicate_of.owner_id != viewer.pk:
        return None
    return row


def awaiting_embedding(job: EncodeJob, viewer: Any, *, within_s: float = 15.0) -> bool:
    """The owner's job finished moments ago and the worker has not stored its vector yet
    (result pages keep polling so the near-duplicate notice can appear)."""
    if not _owners_done_job(job, viewer) or job.finished is None:
        return False
    fresh = (timezone.now() - job.finished).total_seconds() < within_s
    return fresh and not PictureEmbedding.objects.filter(picture_id=job.picture_id).exists()
