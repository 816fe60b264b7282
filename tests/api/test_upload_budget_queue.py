"""Upload budgets (how far the link must travel) and the queue place of a waiting job (issue 11)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

import codec
from imagehost.models import EncodeJob, EncodeKind, JobStatus

pytestmark = pytest.mark.django_db

PREFIX = "http://testserver/i/"


@pytest.mark.parametrize("budget, limit", [("chat", 4000), ("proxy", 8000)])
def test_a_budget_sets_max_chars_so_the_whole_token_url_fits(anon_client, png_bytes, budget, limit):
    r = anon_client.post(
        "/api/v1/images", {"file": SimpleUploadedFile("a.png", png_bytes(), "image/png"), "budget": budget},
        format="multipart",
    )
    assert r.status_code == 202, r.content
    job = EncodeJob.objects.get(pk=r.json()["id"])
    assert job.max_chars == limit - len(PREFIX)


def test_best_budget_and_no_budget_set_no_bound(anon_client, png_bytes):
    for extra in ({"budget": "best"}, {}):
        r = anon_client.post("/api/v1/images", {"file": SimpleUploadedFile("a.png", png_bytes(), "image/png"), **extra})
        assert r.status_code == 202, r.content
        assert EncodeJob.objects.get(pk=r.json()["id"]).max_chars is None


def test_budget_as_a_query_parameter_of_a_raw_upload(anon_client, png_bytes):
    r = anon_client.post("/api/v1/images?budget=chat", data=png_bytes(), content_type="image/png")
    assert r.status_code == 202, r.content
    assert EncodeJob.objects.get(pk=r.json()["id"]).max_chars == 4000 - len(PREFIX)


@pytest.mark.parametrize("query", ["budget=far", "budget=chat&max_chars=900", "budget="])
def test_bad_budgets_are_a_400_and_save_nothing(anon_client, png_bytes, query):
    r = anon_client.post(f"/api/v1/images?{query}", data=png_bytes(), content_type="image/png")
    assert r.status_code == 400, r.content
    assert "budget" in r.json()["error"]["fields"]
    assert not EncodeJob.objects.exists()


def test_site_form_budget_reaches_the_job(client, png_bytes):
    r = client.post("/", {"images": SimpleUploadedFile("a.png", png_bytes(), "image/png"), "budget": "proxy"})
    assert r.status_code == 303, r.content
    assert EncodeJob.objects.get().max_chars == 8000 - len(PREFIX)
    r = client.post("/", {"images": SimpleUploadedFile("a.png", png_bytes(), "image/png"), "budget": "nowhere"})
    assert r.status_code == 400


def test_stored_size_is_the_codec_downscale_rule():
    # The figures: a 768×512 photo comes back at 627×418, a 4000×3000 one at 591×443.
    assert codec.stored_size(768, 512) == (627, 418)
    assert codec.stored_size(4000, 3000) == (591, 443)
    assert codec.stored_size(300, 200) == (300, 200)


def _finished(seconds: float, kind: str = EncodeKind.VAE) -> EncodeJob:
    now = timezone.now()
    return EncodeJob.objects.create(
        status=JobStatus.DONE, kind=kind, started=now - timedelta(seconds=seconds), finished=now
    )


def test_queue_place_counts_unfinished_jobs_ahead_and_estimates_from_recent_encodes(anon_client):
    _finished(10)
    _finished(20)
    _finished(1, kind=EncodeKind.AVIF)  # another kind: not in the VAE mean
    running = EncodeJob.objects.create(status=JobStatus.RUNNING, started=timezone.now() - timedelta(seconds=5))
    first = EncodeJob.objects.create(status=JobStatus.QUEUED, source=b"x")
    mine = EncodeJob.objects.create(status=JobStatus.QUEUED, source=b"x")
    later = EncodeJob.objects.create(status=JobStatus.QUEUED, source=b"x")

    body = anon_client.get(f"/api/v1/jobs/{mine.pk}").json()
    assert body["queue"] == {"ahead": 2, "position": 3, "estimate_s": 45.0}  # (2 ahead + itself) × 15 s
    assert anon_client.get(f"/api/v1/jobs/{first.pk}").json()["queue"]["ahead"] == 1
    assert anon_client.get(f"/api/v1/jobs/{later.pk}").json()["queue"]["position"] == 4
    place = anon_client.get(f"/api/v1/jobs/{running.pk}").json()["queue"]
    spent = (timezone.now() - running.started).total_seconds()  # 5 s, and however long this test took
    assert place["position"] == 0 and 15 - spent - 0.1 <= place["estimate_s"] <= 10  # 15 s mean minus time spent
    done = EncodeJob.objects.filter(status=JobStatus.DONE).first()
    assert anon_client.get(f"/api/v1/jobs/{done.pk}").json()["queue"] is None


def test_queue_estimate_is_null_without_history(anon_client):
    job = EncodeJob.objects.create(status=JobStatus.QUEUED, source=b"x")
    assert anon_client.get(f"/api/v1/jobs/{job.pk}").json()["queue"] == {"ahead": 0, "position": 1, "estimate_s": None}


def test_queue_estimate_falls_back_to_other_kinds(anon_client):
    _finished(8)
    job = EncodeJob.objects.create(status=JobStatus.QUEUED, source=b"x", kind=EncodeKind.AVIF)
    assert anon_client.get(f"/api/v1/jobs/{job.pk}").json()["queue"]["estimate_s"] == 8.0


@pytest.mark.parametrize("kind, max_chars", [("avif", 100), ("vae", 20)])
def test_a_max_chars_below_the_shortest_token_is_a_400_at_once(anon_client, png_bytes, kind, max_chars):
    """Was a 202, then a job that always failed in the worker ("max_chars=100 is too small: an
    avif token needs at least 440"): the floor is known before anything is encoded."""
    floor = codec.minimum_chars(kind="avif" if kind == "avif" else "vae")
    r = anon_client.post(f"/api/v1/images?kind={kind}&max_chars={max_chars}", data=png_bytes(), content_type="image/png")
    assert r.status_code == 400 and f"at least {floor}" in r.json()["error"]["message"]
    assert not EncodeJob.objects.exists()
    r = anon_client.post(f"/api/v1/images?kind={kind}&max_chars={floor}", data=png_bytes(), content_type="image/png")
    assert r.status_code == 202
