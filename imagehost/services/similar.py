"""Similar pictures, the write side: vectors in the database and the per-process index.

- ``embed_picture`` embeds what a picture's token decodes to and stores it
  (``PictureEmbedding``: model id + float16 blob), noting the owner's near-duplicate.
- ``index_finished_job`` is the encode job's hook: called by the worker right after a job
  is done (its transaction committed); failures are logged, never raised.
- ``backfill`` embeds pictures that have no vector yet (``manage.py backfill_embeddings``).
- ``live_index`` is this process's ``LiveIndex`` (one per web or worker process, built
  lazily from the database, then brought up to date from ``EmbeddingChange`` before each
  search; ``ChangeCursor`` says how far it has read). ``prune_change_log`` (Celery beat)
  keeps that log short. Results are always filtered by the ids a viewer may see, read from
  the database at query time (``services.search``), so a stale index can only miss a
  picture, never leak one.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone
from PIL import Image

from .. import similarity as sim
from ..models import REMOVALS_LOGGED, EmbeddingChange, EncodeJob, JobStatus, Picture, PictureEmbedding
from .errors import BadToken, DecoderBusy, ModelUnavailable
from .rendering import decode_in_a_slot

log = logging.getLogger(__name__)

MODEL = sim.DEFAULT_MODEL
MODEL_UNAVAILABLE_MESSAGE = "Similar-picture search is unavailable on this server right now."


# --- the index -------------------------------------------------------------------------------
#: A change id below the cursor that has not shown up for this long belonged to a transaction
#: that rolled back (the ones that store a change take milliseconds): the index stops asking.
GAP_TIMEOUT_S = 60.0
#: Ids below the newest one that a fresh index asks after (writes still in flight when it was
#: built); also the most missing ids one read adds to a cursor.
GAP_WINDOW = 256


@dataclass(frozen=True)
class ChangeCursor:
    """How far this process has read ``EmbeddingChange``: the highest id seen, and the ids below
    it not seen yet, with when each was first missed (``time.monotonic``). PostgreSQL gives an
    id when a row is written and shows the row when it commits, so a lower id can appear after
    a higher one: those are asked for again until they appear or GAP_TIMEOUT_S passes."""

    last_id: int
    missing: dict[int, float] = field(default_factory=dict)

    def advance(self, seen: set[int]) -> ChangeCursor:
        """The cursor after reading the change ids ``seen`` (every id above ``last_id``, and
        whichever of ``missing`` have appeared)."""
        now = time.monotonic()
        missing = {i: t for i, t in self.missing.items() if i not in seen and now - t < GAP_TIMEOUT_S}
        last = max(seen | {self.last_id})
        missing.update((i, now) for i in range(max(self.last_id + 1, last - GAP_WINDOW), last) if i not in seen)
        return ChangeCursor(last, missing)


def _load_all() -> tuple[list[tuple[int, np.ndarray]], ChangeCursor]:
    last = EmbeddingChange.objects.aggregate(m=Max("id"))["m"] or 0  # read first: later changes re-apply
    recent = EmbeddingChange.objects.filter(id__gt=last - GAP_WINDOW, id__lte=last).values_list("id", flat=True)
    cursor = ChangeCursor(max(0, last - GAP_WINDOW)).advance(set(recent))
    return _rows(PictureEmbedding.objects.filter(model=MODEL)), cursor


def _load_changes(cursor: ChangeCursor) -> tuple[list[tuple[int, np.ndarray]], list[int], ChangeCursor]:
    wanted = Q(id__gt=cursor.last_id) | Q(id__in=list(cursor.missing))
    changes = list(EmbeddingChange.objects.filter(wanted).values_list("id", "picture_id"))
    cursor = cursor.advance({cid for cid, _ in changes})
    if not changes:
        return [], [], cursor
    changed = {pid for _, pid in changes}
    upserts = _rows(PictureEmbedding.objects.filter(model=MODEL, picture_id__in=changed))
    present = {pid for pid, _ in upserts}
    return upserts, sorted(changed - present), cursor


@contextmanager
def removals_logged_in_bulk(embeddings: QuerySet[PictureEmbedding]) -> Iterator[None]:
    """Log the removal of ``embeddings`` in a few INSERTs, then run the block that deletes them
    without the change row each deletion's signal writes (an account's thousands of pictures
    were as many INSERTs). Use it inside the deleting transaction."""
    picture_ids = list(embeddings.values_list("picture_id", flat=True))
    EmbeddingChange.objects.bulk_create([EmbeddingChange(picture_id=pk) for pk in picture_ids], batch_size=1000)
    token = REMOVALS_LOGGED.set(True)
    try:
        yield
    finally:
        REMOVALS_LOGGED.reset(token)


def prune_change_log() -> int:
    """Delete ``EmbeddingChange`` rows older than ``EMMM_EMBEDDING_LOG_KEEP_S``; returns how many.

    Safe for every process's index: one that has not read the log for half that long is built
    again from the vectors table (``live_index``), so it never needs a pruned row."""
    cutoff = timezone.now() - timedelta(seconds=settings.EMMM_EMBEDDING_LOG_KEEP_S)
    deleted, _ = EmbeddingChange.objects.filter(created__lt=cutoff).delete()
    return deleted


def _rows(queryset) -> list[tuple[int, np.ndarray]]:
    dim = sim.get_spec(MODEL).dim
    return [(pid, sim.blob_to_vector(blob, dim)) for pid, blob in queryset.values_list("picture_id", "vector")]


_live: sim.LiveIndex | None = None
_live_lock = threading.Lock()


def live_index() -> sim.LiveIndex:
    """This process's index of every stored vector of the default model."""
    global _live
    with _live_lock:
        if _live is None:
            _live = sim.LiveIndex(
                MODEL, sim.get_spec(MODEL).dim, load_all=_load_all, load_changes=_load_changes,
                max_idle_s=settings.EMMM_EMBEDDING_LOG_KEEP_S / 2,
            )  # fmt: skip
        return _live


def reset_live_index() -> None:
    """Forget this process's index (tests; the next search rebuilds it from the database)."""
    global _live
    with _live_lock:
        _live = None


# --- writes ----------------------------------------------------------------------------------
def embed_token_image(token: str) -> sim.Embedding:
    """Decode a token (in a decode slot, as ``/i/`` does) and embed the picture.
    BadToken (400) / ModelUnavailable (503) / DecoderBusy (503)."""
    return embed_pil(decode_in_a_slot(token))


def embed_pil(image: Image.Image) -> sim.Embedding:
    """Embed a decoded picture with the default model; ModelUnavailable (503) without weights."""
    try:
        return sim.embed_image(image, MODEL)
    except sim.ModelUnavailable as exc:
        log.warning("similarity model %s unavailable: %s", MODEL, exc)  # names files: for the operator only
        raise ModelUnavailable(MODEL_UNAVAILABLE_MESSAGE) from exc


def store_embedding(picture: Picture, embedding: sim.Embedding) -> PictureEmbedding:
    """Save (or replace) a picture's vector, with its near-duplicate among the owner's others."""
    dup_id, dup_score = _owners_near_duplicate(picture, embedding.vector)
    with transaction.atomic():
        row, _ = PictureEmbedding.objects.update_or_create(
            picture=picture,
            defaults={
                "model": embedding.model, "vector": sim.vector_to_blob(embedding.vector),
                "duplicate_of_id": dup_id, "duplicate_score": dup_score,
            },
        )
        EmbeddingChange.objects.create(picture_id=picture.pk)
    return row


def _owners_near_duplicate(picture: Picture, vector: np.ndarray) -> tuple[int | None, float | None]:
    """The owner's most similar earlier picture (created before it; the lower id on a tie) at or
    above the threshold (exact, over those vectors only: the worker never needs the whole site's index)."""
    if picture.owner_id is None:
        return None, None
    earlier = Q(picture__created__lt=picture.created) | Q(picture__created=picture.created, picture__pk__lt=picture.pk)
    rows = _rows(PictureEmbedding.objects.filter(earlier, model=MODEL, picture__owner_id=picture.owner_id))
    index = sim.SimilarityIndex.build(rows, sim.get_spec(MODEL).dim, model=MODEL, flat_max=len(rows) + 1)
    hits = sim.find_near_duplicates(index, vector, k=1)
    return hits[0] if hits else (None, None)


def embed_picture(picture: Picture) -> PictureEmbedding:
    """Embed a picture from its token and store the vector."""
    return store_embedding(picture, embed_token_image(picture.token))


def index_finished_job(job: EncodeJob, decoded: Image.Image | None = None) -> None:
    """The encode job's hook (worker, after the job is done): embed its picture (``decoded``:
    what its token decodes to, when the worker has it already); never raises."""
    if job.status != JobStatus.DONE or job.picture_id is None:
        return
    try:
        if decoded is None:
            embed_picture(job.picture)
        else:
            store_embedding(job.picture, embed_pil(decoded))
    except Exception:  # noqa: BLE001 - the job is done either way; the backfill retries later
        log.exception("could not embed picture %s of job %s", job.picture_id, job.pk)


def backfill(*, batch_size: int = 64, limit: int | None = None, report: Callable[[str], Any] = log.info) -> int:
    """Embed every picture without a vector of the default model (at most ``limit`` pictures
    tried); returns how many were stored. ModelUnavailable, naming why (for the operator who runs
    it), before any picture is decoded when the similarity model cannot load."""
    try:
        sim.load_model(MODEL)
    except sim.ModelUnavailable as exc:
        raise ModelUnavailable(f"{MODEL_UNAVAILABLE_MESSAGE} ({exc})") from exc
    missing = Picture.objects.exclude(embedding__model=MODEL).order_by("pk")
    done = tried = 0
    last = 0
    while limit is None or tried < limit:
        chunk = list(missing.filter(pk__gt=last)[: batch_size if limit is None else min(batch_size, limit - tried)])
        if not chunk:
            break
        for picture in chunk:
            last = picture.pk
            tried += 1
            try:
                embed_picture(picture)
                done += 1
            except (BadToken, DecoderBusy, ModelUnavailable) as exc:  # this picture's token or codec model
                report(f"picture {picture.pk}: skipped ({exc})")
        report(f"{done} pictures embedded")
    return done
