"""The whole path a program takes, through a real Celery worker process (PostgreSQL + Redis).

token from the settings page -> upload -> poll the job -> GET the token URL and the short
URL -> the images decode to the uploaded size.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from PIL import Image
from rest_framework.test import APIClient

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_token_upload_poll_fetch(celery_worker, client, django_user_model, png_bytes, wait_for):
    user = django_user_model.objects.create_user("flow", password="pw-flow-123")
    client.force_login(user)
    created = client.post("/api/tokens/", {"name": "flow script"})
    assert created.status_code == 303
    raw = client.get(created["Location"]).context["raw_token"]

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    album = api.post("/api/v1/albums", {"title": "Screenshots"}, format="json").json()
    upload = png_bytes(96, 64, seed=3)
    r = api.post(f"/api/v1/images?album={album['id']}&title=shot", data=upload, content_type="image/png")
    assert r.status_code == 202, r.content
    status_url = urlsplit(r.json()["status_url"]).path

    def finished():
        body = api.get(status_url).json()
        return body if body["status"] in ("done", "failed") else None

    job = wait_for(finished, timeout=180, interval=0.5, what="the worker to encode the upload")
    assert job["status"] == "done", (job, celery_worker.log()[-3000:])
    picture = job["picture"]
    assert (picture["width"], picture["height"]) == (96, 64)
    assert picture["chars"] == len(picture["token"]) and picture["short_url"]

    for url in (picture["token_url"], picture["short_url"]):
        image_response = client.get(urlsplit(url).path)
        assert image_response.status_code == 200, url
        image = Image.open(io.BytesIO(image_response.content))
        assert image.size == (96, 64), url

    mine = api.get(f"/api/v1/pictures?album={album['id']}").json()
    assert [p["title"] for p in mine["results"]] == ["shot"]
    assert mine["results"][0]["token"] == picture["token"]
