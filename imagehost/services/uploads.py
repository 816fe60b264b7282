"""Uploads: validate the bytes, save queued jobs, send them after the transaction commits."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import codec
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac

from ..models import Album, EncodeJob, EncodeKind
from .errors import IdempotencyKeyReused, InvalidInput, UnsupportedImage, UploadTooLarge
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
    #: The jobs are an earlier request's, found by its Idempotency-Key (nothing new was saved).
    replayed: bool = False

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
    idempotency_key: str | None = None,
) -> Submission:
    """Validate every upload, then save each as a queued EncodeJob and send the tasks after commit.

    Never encodes on the calling thread. Each job gets a secret deletion key
    (``Submission.deletion_keys``); a signed-in owner's job also gets its short link now.
    ``owner`` is a user or None (anonymous). Raises UploadTooLarge / UnsupportedImage /
    InvalidInput before anything is saved, so a bad file in a batch saves none of them.
    ``kind`` is an EncodeKind: a VAE token or AVIF (which ignores ``model``).

    ``idempotency_key`` (None: none; one upload by a signed-in owner): when the owner's earlier upload
    used the same key with the same image and options, its job is returned instead
    (``Submission.replayed``, with a new deletion key while the old one is unused);
    IdempotencyKeyReused (422) when it came with anything else.
    """
    if owner is not None and not getattr(owner, "is_authenticated", False):
        owner = None
    if album is not None and not album.is_owned_by(owner):
        raise InvalidInput("You can only add pictures to your own albums.", field="album")
    if kind == EncodeKind.AVIF:
        model = None  # an AVIF token names no model: ``model`` is ignored, as the API says
    request_digest = ""
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key, owner, payloads)
        request_digest = upload_digest(payloads[0], album=album, title=title, max_chars=max_chars, model=model, kind=kind)
        earlier = _job_for_key(owner, idempotency_key)
        if earlier is not None:
            return _replay(earlier, request_digest)
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
    try:
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
                    idempotency_key=idempotency_key or "",
                    request_digest=request_digest,
                )
                if owner is not None:  # a working link at once: "encoding…" until the job is done
                    reserve_short_link(job)
                submission.jobs.append(job)
                submission.deletion_keys[job.pk] = raw_key
            transaction.on_commit(submission.send, robust=False)
    except IntegrityError:
        # Another request with this key saved its job after we looked (the unique constraint).
        earlier = _job_for_key(owner, idempotency_key) if idempotency_key else None
        if earlier is None:
            raise
        return _replay(earlier, request_digest)
    return submission


IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def check_idempotency_key(key: str, owner: Any, payloads: list[bytes]) -> None:
    """InvalidInput unless ``key`` can name one upload: 1-255 visible ASCII characters, sent by
    a signed-in owner (anonymous clients cannot be told apart) with one image."""
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidInput("An Idempotency-Key is 1 to 255 visible ASCII characters, such as a UUID.", field="Idempotency-Key")
    if owner is None:
        raise InvalidInput("An Idempotency-Key needs a signed-in client (an API token): anonymous uploads cannot be told apart.",
                           field="Idempotency-Key")  # fmt: skip
    if len(payloads) != 1:
        raise InvalidInput("An Idempotency-Key names one upload: send one image with it.", field="Idempotency-Key")


def upload_digest(data: bytes, *, album: Album | None, title: str, max_chars: int | None, model: str | None, kind: str) -> str:
    """A keyed digest (HMAC-SHA256 with the site's secret) of an upload's image and options: what a
    retry with the same key must repeat. Keyed, so that the row of a deleted upload, which
    keeps it, cannot confirm a guessed image and title to whoever reads the database."""
    options = {"album": album.pk if album else None, "title": clean_title(title, strip=False), "max_chars": max_chars,
               "model": model or "", "kind": kind}  # fmt: skip
    message = json.dumps(options, sort_keys=True).encode() + b"\0" + data
    return salted_hmac("imagehost.uploads.request-digest", message, algorithm="sha256").hexdigest()


def _job_for_key(owner: Any, key: str) -> EncodeJob | None:
    return EncodeJob.objects.filter(owner=owner, idempotency_key=key).defer("source").first()


def _replay(job: EncodeJob, request_digest: str) -> Submission:
    """The earlier request's job again, with a new deletion key while the old one is unused (the
    client never saw the answer that carried it)."""
    if job.request_digest != request_digest:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for another upload (another image or other options): use a new key for a new upload.",
            field="Idempotency-Key",
        )
    submission = Submission(jobs=[job], replayed=True)
    if job.deletion_digest:
        raw_key, digest = new_deletion_key()
        if EncodeJob.objects.filter(pk=job.pk, deletion_digest=job.deletion_digest).update(deletion_digest=digest):
            job.deletion_digest = digest
            submission.deletion_keys[job.pk] = raw_key
    return submission


def submit_upload(data: bytes, **options: Any) -> EncodeJob:
    """One upload (see ``submit_uploads``); returns its job."""
    return submit_uploads([data], **options).jobs[0]
