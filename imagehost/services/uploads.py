"""Uploads: validate the bytes, save queued jobs, send them after the transaction commits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import codec
from django.conf import settings
from django.db import transaction

from ..models import Album, EncodeJob, EncodeKind
from .errors import InvalidInput, UnsupportedImage, UploadTooLarge
from .deletion import new_deletion_key
from .dispatch import dispatch_waiting
from .library import clean_title, lock_album
from .links import reserve_short_link


def max_upload_pixels() -> int:
    """The most pixels an upload may have (more: 413). The codec downscales what it encodes."""
    return settings.EMMM_MAX_UPLOAD_PIXELS


def validate_upload(data: bytes) -> codec.ImageFacts:
    """Check size, format and pixel count without decoding pixels.

    Raises UploadTooLarge (413) or UnsupportedImage (415).
    """
    if len(data) > settings.EMMM_MAX_UPLOAD_BYTES:
        raise UploadTooLarge(
            f"The file is {len(data):,} bytes; the limit is {settings.EMMM_MAX_UPLOAD_BYTES:,} bytes."
        )
    if not data:
        raise UnsupportedImage("The file is empty.")
    try:
        facts = codec.probe_image(data)
    except codec.InvalidImage as exc:
        if "pixel" in str(exc).lower():
            raise UploadTooLarge(str(exc)) from exc
        raise UnsupportedImage(str(exc)) from exc
    fmt = (facts.format or "").upper()
    allowed = [f.upper() for f in settings.EMMM_ALLOWED_FORMATS]
    if fmt not in allowed:
        names = ", ".join(allowed[:-1]) + f" or {allowed[-1]}" if len(allowed) > 1 else "".join(allowed)
        raise UnsupportedImage(f"{fmt or 'This'} images are not accepted; send {names}.")
    pixels = facts.width * facts.height
    if pixels > max_upload_pixels():
        raise UploadTooLarge(
            f"The image is {facts.width}x{facts.height} = {pixels:,} pixels; the limit is {max_upload_pixels():,}."
        )
    return facts


@dataclass
class Submission:
    """The jobs saved for one upload request.

    ``queue_unavailable`` is set (once the surrounding transaction has committed) when the
    broker could not be reached: the jobs are kept, queued, and the sweeper sends them when
    the broker is back. Both the site and the API then answer "accepted, with a warning".
    """

    jobs: list[EncodeJob] = field(default_factory=list)
    queue_unavailable: bool = False
    #: Each job's secret deletion key (shown once; only its digest is stored).
    deletion_keys: dict[Any, str] = field(default_factory=dict)

    def send(self) -> None:
        """Dispatch waiting jobs in fair order (``services.dispatch``); the sweeper sends the rest."""
        self.queue_unavailable = dispatch_waiting().broker_down


def submit_uploads(
    payloads: list[bytes],
    *,
    owner: Any = None,
    album: Album | None = None,
    title: str = "",
    max_chars: int | None = None,
    model: str | None = None,
    kind: str = EncodeKind.VAE,
) -> Submission:
    """Validate every upload, then save each as a queued EncodeJob and send the tasks after commit.

    Never encodes on the calling thread. Each job gets a secret deletion key
    (``Submission.deletion_keys``); a signed-in owner's job also gets its short link now. ``owner`` is a user or None (anonymous). Raises
    UploadTooLarge / UnsupportedImage / InvalidInput before anything is saved, so a bad
    file in a batch saves none of them. ``kind`` is an EncodeKind: a VAE token or AVIF (which
    ignores ``model``).
    """
    if owner is not None and not getattr(owner, "is_authenticated", False):
        owner = None
    if album is not None and not album.is_owned_by(owner):
        raise InvalidInput("You can only add pictures to your own albums.", field="album")
    if kind == EncodeKind.AVIF:
        model = None  # an AVIF token names no model: ``model`` is ignored, as the API says
    if model and model not in codec.available_models():
        raise InvalidInput(f"Unknown model {model!r}; available: {', '.join(codec.available_models())}.", field="model")
    if kind not in EncodeKind.values:
        raise InvalidInput(f"Unknown kind {kind!r}; choose {' or '.join(EncodeKind.values)}.", field="kind")
    if model and not codec.model_available(model):  # refused now, not by the worker later (issue 8.4)
        raise InvalidInput(f"The model {model!r} is not installed on this server; choose another or leave it out.", field="model")
    if max_chars is not None:  # the shortest token of the model and kind: refused now, not by the worker later
        floor = codec.minimum_chars(model or None, kind="avif" if kind == EncodeKind.AVIF else "vae")
        if max_chars < floor:
            raise InvalidInput(f"max_chars={max_chars} is too small: a {kind} token needs at least {floor} characters.", field="max_chars")
    if not payloads:
        raise InvalidInput("Choose at least one image to upload.")
    for data in payloads:
        validate_upload(data)
    submission = Submission()
    with transaction.atomic():
        if album is not None:
            lock_album(album)  # NotFound if it was deleted meanwhile
        for data in payloads:
            raw_key, digest = new_deletion_key()
            job = EncodeJob.objects.create(
                owner=owner,
                album=album,
                title=clean_title(title, strip=False),
                model_name=model or "",
                max_chars=max_chars,
                kind=kind,
                source=data,
                source_bytes=len(data),
                deletion_digest=digest,
            )
            if owner is not None:  # a working link at once: "encoding…" until the job is done
                reserve_short_link(job)
            submission.jobs.append(job)
            submission.deletion_keys[job.pk] = raw_key
        transaction.on_commit(submission.send, robust=False)
    return submission


def submit_upload(data: bytes, **options: Any) -> EncodeJob:
    """One upload (see ``submit_uploads``); returns its job."""
    return submit_uploads([data], **options).jobs[0]
