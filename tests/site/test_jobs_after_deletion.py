"""A job whose row, owner or reserved link goes while its image is being encoded: the worker
ends it cleanly (nothing to write, no traceback), and nothing deleted comes back."""
from __future__ import annotations

import pytest

from imagehost.models import EncodeJob, JobStatus, Picture, ShortLink
from imagehost.services import jobs, links, uploads

pytestmark = pytest.mark.django_db


def test_an_account_deleted_while_its_upload_encodes(user, png_bytes, real_encoded, monkeypatch):
    """An admin deleted the account (the job row went with it) mid-encode: complete() raised
    AttributeError ('NoneType' object has no attribute 'is_finished') in the worker."""
    job = uploads.submit_upload(png_bytes(32, 24), owner=user)

    def encode_while_the_account_goes(claimed):
        user.delete()
        return real_encoded

    monkeypatch.setattr(jobs, "encode", encode_while_the_account_goes)
    assert jobs.run_encode_job(job.pk) is None
    assert not EncodeJob.objects.exists() and not Picture.objects.exists() and not ShortLink.objects.exists()


@pytest.mark.parametrize("end", ["complete", "fail_by_id", "requeue"])
def test_every_end_of_a_job_takes_a_vanished_row(user, png_bytes, real_encoded, end):
    job = uploads.submit_upload(png_bytes(32, 24), owner=user)
    assert jobs.claim(job.pk) is not None
    EncodeJob.objects.filter(pk=job.pk).delete()
    ends = {
        "complete": lambda: jobs.complete(job.pk, real_encoded),
        "fail_by_id": lambda: jobs.fail_by_id(job.pk, "not an image"),
        "requeue": lambda: jobs.requeue(job.pk, RuntimeError("x"), "Encoding failed (RuntimeError)."),
    }
    assert ends[end]() is None
    assert not Picture.objects.exists()


def test_a_reserved_link_deleted_while_encoding_stays_deleted(user, png_bytes, real_encoded):
    """The owner deleted the upload's link while it encoded; when the job finished, a new link
    appeared under another slug (the fallback meant for anonymous uploads)."""
    job = uploads.submit_upload(png_bytes(32, 24), owner=user)
    links.delete_short_link(ShortLink.objects.get(job=job), owner=user)
    jobs.claim(job.pk)
    done = jobs.complete(job.pk, real_encoded)
    assert done.status == JobStatus.DONE and done.picture is not None
    assert not ShortLink.objects.filter(owner=user).exists()


def test_an_anonymous_upload_still_gets_the_shared_link(png_bytes, real_encoded):
    job = uploads.submit_upload(png_bytes(32, 24), owner=None)
    jobs.claim(job.pk)
    done = jobs.complete(job.pk, real_encoded)
    assert ShortLink.objects.get(owner__isnull=True, job=done).token == done.picture.token


@pytest.mark.parametrize("finished", [True, False])
def test_a_deleted_uploads_title_does_not_stay_behind(user, png_bytes, real_encoded, finished):
    """Job rows outlive their pictures; the title typed for a deleted upload stayed in its row."""
    from imagehost.services import deletion, library

    submission = uploads.submit_uploads([png_bytes(32, 24)], owner=user, title="Our new flat, 4th floor")
    job = submission.jobs[0]
    if finished:
        jobs.claim(job.pk)
        library.delete_picture(jobs.complete(job.pk, real_encoded).picture)
    else:
        deletion.delete_upload(job)
    job.refresh_from_db()
    assert job.title == "" and job.deletion_digest == ""
