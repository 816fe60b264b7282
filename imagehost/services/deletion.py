"""Secret per-upload deletion links (``/delete/<key>/``): delete an upload without a session.

Every upload gets a random key, shown once in the upload's answer (ShareX's ``DeletionURL``);
only its sha256 is stored (``EncodeJob.deletion_digest``). Using it deletes the picture and
its short links (or, before the encoding ends, stops the job and its reserved link), and the
key stops working.
"""
from __future__ import annotations

import secrets

from django.db import transaction

from ..models import EncodeJob, ShortLink, deletion_digest
from .errors import NotFound
from .jobs import fail
from .library import delete_picture


def new_deletion_key() -> tuple[str, str]:
    """A fresh key and what is stored of it: ``(raw, digest)``."""
    raw = secrets.token_urlsafe(24)
    return raw, deletion_digest(raw)


def delete_upload(job: EncodeJob) -> None:
    """Delete what an upload made (its picture and short links); an unfinished job is failed first.

    Raises NotFound when the key was used already. Safe against a worker finishing the job at
    the same moment: ``jobs.complete`` ignores a job that has already ended.
    """
    with transaction.atomic():
        job = EncodeJob.objects.select_for_update().filter(pk=job.pk, deletion_digest=job.deletion_digest).first()
        if job is None or not job.deletion_digest:
            raise NotFound("No such upload, or it has been deleted already.")
        picture = job.picture
        job.deletion_digest = job.title = ""
        if job.is_finished:
            job.save(update_fields=["deletion_digest", "title"])
        else:
            fail(job, "Deleted by its uploader before it was encoded.")
        # Its owner's links made for this upload (reserved before encoding, or made from its
        # picture), one by one: signals drop cached look-ups;
        # an anonymous upload's shared link is the picture's to decide (library.delete_picture).
        for link in ShortLink.objects.filter(job=job, owner__isnull=False):
            link.delete()
        if picture is not None:
            delete_picture(picture, delete_links=True)
