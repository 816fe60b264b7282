"""The AVIF kind: chosen on the upload form or the API, encoded by the job, served as it is."""
from __future__ import annotations

import io

import codec
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from imagehost.models import EncodeJob, EncodeKind, JobStatus
from imagehost.services import errors, jobs, uploads

pytestmark = pytest.mark.django_db(transaction=True)


def screenshot_png(w: int = 160, h: int = 64) -> bytes:
    """A small screenshot-like picture: dark digits on white."""
    img = Image.new("RGB", (w, h), "white")
    ImageDraw.Draw(img).text((8, 24), "2026-12-01  $1,234.56", fill=(20, 20, 20))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_form_kind_avif_makes_an_avif_token_served_as_is(client):
    page = client.get("/").content.decode()
    assert 'name="kind" value="avif"' in page and 'name="kind" value="vae" checked' in page

    r = client.post("/", {"images": [SimpleUploadedFile("s.png", screenshot_png())], "kind": "avif"})
    assert r.status_code == 303
    job = EncodeJob.objects.get()
    assert job.kind == EncodeKind.AVIF
    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    token = job.picture.token
    assert codec.inspect(token).payload_kind == "avif"

    # AVIF at native size: the token's own file, byte for byte (no decode, no re-encode).
    r = client.get(f"/i/{token}.avif")
    assert r.status_code == 200 and r["Content-Type"] == "image/avif"
    assert r.content == codec.avif_bytes(token)
    # Any other format is decoded from it, with no model needed.
    r = client.get(f"/i/{token}.png")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (160, 64)


def test_form_without_kind_is_a_vae_token_and_a_bad_kind_is_400(client, png_bytes):
    r = client.post("/", {"images": [SimpleUploadedFile("a.png", png_bytes(64, 48))], "kind": "gif"})
    assert r.status_code == 400 and EncodeJob.objects.count() == 0
    r = client.post("/", {"images": [SimpleUploadedFile("a.png", png_bytes(64, 48))]})
    assert r.status_code == 303 and EncodeJob.objects.get().kind == EncodeKind.VAE


def test_api_kind_field(client, png_bytes):
    r = client.post("/api/v1/images", {"file": SimpleUploadedFile("a.png", png_bytes(64, 48)), "kind": "avif"})
    assert r.status_code == 202, r.content
    assert EncodeJob.objects.get(pk=r.json()["id"]).kind == EncodeKind.AVIF
    r = client.post("/api/v1/images?kind=webp", png_bytes(64, 48), content_type="image/png")
    assert r.status_code == 400 and "kind" in r.json()["error"]["fields"]


def test_an_avif_upload_ignores_the_model_as_documented(client, png_bytes):
    """The API says `model` is ignored for `avif`; a model this server lacks was a 400."""
    r = client.post("/api/v1/images?kind=avif&model=sd-vae-ft-mse", png_bytes(64, 48), content_type="image/png")
    assert r.status_code == 202, r.content
    job = EncodeJob.objects.get(pk=r.json()["id"])
    assert job.kind == EncodeKind.AVIF and job.model_name == ""


def test_service_refuses_an_unknown_kind_before_saving(png_bytes):
    with pytest.raises(errors.InvalidInput):
        uploads.submit_uploads([png_bytes(64, 48)], kind="jpeg2000")
    assert EncodeJob.objects.count() == 0


def test_avif_kind_respects_max_chars(png_bytes):
    job = uploads.submit_upload(screenshot_png(320, 128), kind=EncodeKind.AVIF, max_chars=700)
    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    assert len(job.picture.token) <= 700


def noise_png(w: int, h: int) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_token_longer_than_the_site_accepts_is_encoded_again_under_its_limit(settings):
    """Noise as AVIF with no budget made a token over EMMM_MAX_TOKEN_CHARS: the short link's check
    refused it after the encode, the task died and the job stayed "running" for the sweeper."""
    settings.EMMM_MAX_TOKEN_CHARS = 6000
    job = uploads.submit_upload(noise_png(128, 128), kind=EncodeKind.AVIF)
    assert len(codec.encode(noise_png(128, 128), kind="avif").token) > 6000  # what used to be made
    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, (job.status, job.error)
    assert len(job.picture.token) <= 6000 and job.source is None
    assert codec.decode(job.picture.token).size == (job.picture.width, job.picture.height)


def test_an_upload_that_encodes_to_a_taken_down_token_fails_clearly():
    """The same image again makes the same token; if that token was taken down, completing the job
    raised TokenBlocked after the encode and left it "running"."""
    from imagehost.services import tokens

    first = uploads.submit_upload(screenshot_png(), kind=EncodeKind.AVIF)
    jobs.run_encode_job(first.pk)
    first.refresh_from_db()
    tokens.block_token(first.picture.token)
    again = uploads.submit_upload(screenshot_png(), kind=EncodeKind.AVIF)
    jobs.run_encode_job(again.pk)
    again.refresh_from_db()
    assert again.status == JobStatus.FAILED and "taken down" in again.error
    assert again.picture is None and again.source is None
