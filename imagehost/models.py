"""Data model. The token is the canonical payload; rows only point at tokens.

No model stores pixels. ``EncodeJob.source`` holds the uploaded original only while
the job is queued/running; it is set to NULL in the same transaction that ends the job.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from contextvars import ContextVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete
from django.utils import timezone
from django.dispatch import receiver


def token_sha256(token: str) -> str:
    """A token's identity, ``codec.token_id``: the hex sha256 of its canonical bytes.

    The key for look-ups, blocks, cache keys and ETags (``token_sha256`` columns). Raises
    ``codec.InvalidToken`` for text that is not canonical base64url; services check tokens
    first (``services.tokens.checked_token_sha256``).
    """
    from codec.token import token_id  # the codec's one rule; lazy: the codec imports torch

    return token_id(token)


def deletion_digest(raw_key: str) -> str:
    """What is stored of an upload's secret deletion key (``EncodeJob.deletion_digest``)."""
    return hashlib.sha256(raw_key.encode("utf-8", "replace")).hexdigest()


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private (only me)"
    UNLISTED = "unlisted", "Unlisted (anyone with the link)"
    PUBLIC = "public", "Public"


#: Every slug an album can have (a SlugField of 60): anything else names no album.
ALBUM_SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,60}$")


class Album(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="albums")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["visibility", "-created", "-id"], name="album_visibility_newest")]  # the gallery

    def __str__(self) -> str:
        return self.title

    def is_owned_by(self, user: object) -> bool:
        """The album-owner rule, in one place: only a signed-in owner may add to or change it."""
        return user is not None and getattr(user, "is_authenticated", False) and self.owner_id == user.pk


class Picture(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="pictures"
    )
    album = models.ForeignKey(Album, null=True, blank=True, on_delete=models.SET_NULL, related_name="pictures")
    position = models.PositiveIntegerField(default=0, help_text="Order inside the album.")
    title = models.CharField(max_length=200, blank=True)
    token = models.TextField()
    token_sha256 = models.CharField(max_length=64, db_index=True)
    model_name = models.CharField(max_length=40, help_text="The codec model that encoded the token.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created", "-id"], name="picture_owner_newest"),  # a library's pages
            models.Index(fields=["album", "position", "created", "id"], name="picture_album_order"),  # an album's
        ]

    def __str__(self) -> str:
        return self.title or f"Picture {self.pk}"

    def save(self, *args, **kwargs) -> None:
        self.token_sha256 = token_sha256(self.token)
        super().save(*args, **kwargs)

    @property
    def chars(self) -> int:
        return len(self.token)


#: Every slug a short link can have (generated ones: services.links.new_slug, older ones any
#: token_urlsafe(9); custom ones: services.links.CUSTOM_SLUG_RE): anything else names no link.
SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: A token's identity as it appears in addresses (``/t/<identity>``): ``token_sha256``, lower-case hex.
TOKEN_IDENTITY_RE = re.compile(r"^[0-9a-f]{64}$")


class ShortLink(models.Model):
    """``/s/<slug>`` stands for a token. An owner may have several links to one token (the
    automatic one of an upload, custom ones); anonymous links share one per token.

    A link *reserved* for an upload (``job`` set, ``token`` blank) exists before its token:
    it answers "encoding…" until the job completes and fills the token in (``services.links``).
    An anonymous upload's shared link also records its ``job`` when that upload's completion
    made it (its deletion link may delete it; never one a person made with /shorten), and an
    owner's link made from a picture (its page, or the API's ``picture``) records that
    picture's upload, whose title its page shows (``selectors.picture_for_short_link``).
    """

    slug = models.CharField(max_length=64, unique=True)
    token = models.TextField(blank=True, help_text="Blank while the link waits for its upload's encoding.")
    token_sha256 = models.CharField(max_length=64, db_index=True, blank=True)
    job = models.ForeignKey(
        "EncodeJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="reserved_links",
        help_text="The upload this link was made for: reserved before its token existed, or an anonymous upload's shared link.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="short_links"
    )
    created = models.DateTimeField(auto_now_add=True)
    hits = models.PositiveBigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["owner", "-created", "-id"], name="shortlink_owner_newest")]  # "My links"
        constraints = [
            # Anonymous links share one per token (nobody may change a shared link).
            models.UniqueConstraint(
                fields=["token_sha256"], condition=Q(owner__isnull=True), name="shortlink_anon_token"
            ),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_reserved(self) -> bool:
        """Still waiting for its upload's token."""
        return not self.token

    @property
    def is_expired(self) -> bool:
        """Past its expiry: it answers 410 (its owner can make it work again)."""
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def encoding_failed(self) -> bool:
        """Reserved for an upload whose encoding failed: it will never show a picture (410)."""
        return self.is_reserved and self.job is not None and self.job.status == JobStatus.FAILED

    def save(self, *args, **kwargs) -> None:
        self.token_sha256 = token_sha256(self.token) if self.token else ""
        super().save(*args, **kwargs)


class BlockedToken(models.Model):
    """A takedown: every URL and short link for this token answers 410."""

    token_sha256 = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.token_sha256


class EncodeKind(models.TextChoices):
    """What an upload becomes: a VAE token (the default, shortest) or the image as AVIF."""

    VAE = "vae", "VAE token: the shortest link"
    AVIF = "avif", "AVIF: sharp text and digits, a longer link"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Encoding"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EncodeJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="encode_jobs"
    )
    album = models.ForeignKey(Album, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    model_name = models.CharField(max_length=40, blank=True, help_text="Requested codec model; blank = default.")
    max_chars = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=8, choices=EncodeKind.choices, default=EncodeKind.VAE)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    sends = models.PositiveIntegerField(default=0, help_text="Times the task was put on the broker.")
    error = models.TextField(blank=True)
    # The uploaded original: only while the job is queued/running (see module docstring).
    source = models.BinaryField(null=True, blank=True, editable=False)
    source_bytes = models.PositiveIntegerField(default=0)
    picture = models.OneToOneField(Picture, null=True, blank=True, on_delete=models.SET_NULL, related_name="job")
    # sha256 of the upload's secret deletion key (shown once, in the upload's answer); blank: none/used.
    deletion_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    # An API client's Idempotency-Key for this upload (blank: none) and the sha256 of what was
    # uploaded with it (image and options): a retry with the same key gets this job again.
    idempotency_key = models.CharField(max_length=255, blank=True, editable=False)
    request_digest = models.CharField(max_length=64, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)
    started = models.DateTimeField(null=True, blank=True)
    # Touched every EMMM_JOB_HEARTBEAT_S by the worker while the job is running.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running"]) | Q(source__isnull=True),
                name="encodejob_no_source_after_end",
            ),
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="encodejob_one_job_per_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


class WorkerHeartbeat(models.Model):
    """A Celery worker's sign of life, refreshed every EMMM_WORKER_HEARTBEAT_S (``services.workers``)."""

    name = models.CharField(max_length=200, primary_key=True)
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.seen_at:%Y-%m-%d %H:%M:%S})"
class PictureEmbedding(models.Model):
    """A picture's similarity vector (the source of truth for the in-process FAISS index).

    ``vector`` is ``imagehost.similarity.vector_to_blob`` (float16, 2,560 bytes for the
    default model), made from what the picture's token decodes to. ``duplicate_of``: the
    owner's most similar earlier picture at embedding time, when at or above the measured
    near-duplicate threshold (the "you already have this picture" notice).
    """

    picture = models.OneToOneField(Picture, primary_key=True, on_delete=models.CASCADE, related_name="embedding")
    model = models.CharField(max_length=60, db_index=True, help_text="The embedding model that made the vector.")
    vector = models.BinaryField()
    duplicate_of = models.ForeignKey(Picture, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    duplicate_score = models.FloatField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"embedding of picture {self.picture_id} ({self.model})"


class EmbeddingChange(models.Model):
    """Change log read by every process's index: a picture whose embedding was written or deleted.

    The index applies rows after its cursor (the highest id it has seen): the picture's
    current embedding if it has one, else a removal. Written by ``services.similar``
    (saves) and a ``post_delete`` signal (deletes, including cascades from Picture).
    """

    id = models.BigAutoField(primary_key=True)
    picture_id = models.BigIntegerField()
    created = models.DateTimeField(auto_now_add=True)


#: True while the embeddings being deleted had their removals logged in bulk beforehand
#: (``services.similar.removals_logged_in_bulk``).
REMOVALS_LOGGED: ContextVar[bool] = ContextVar("embedding_removals_logged", default=False)


@receiver(post_delete, sender=PictureEmbedding)
def _log_embedding_deleted(sender, instance: PictureEmbedding, **kwargs) -> None:
    """Deleting a picture (or its embedding) tells every process's index to drop it."""
    if not REMOVALS_LOGGED.get():
        EmbeddingChange.objects.create(picture_id=instance.picture_id)
