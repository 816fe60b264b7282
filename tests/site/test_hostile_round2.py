"""Hostile requests, second round: each was a 500 (or a silent loss) from one cheap request."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from imagehost.models import EncodeJob

pytestmark = pytest.mark.django_db


def test_a_page_with_too_many_query_fields_is_the_sites_400():
    """The error page's back link read request.GET, which raised again: gunicorn's bare 500."""
    query = "&".join(f"a{i}=1" for i in range(1001))
    for path, status in (("/", 400), ("/albums/public/", 400), ("/nope", 404)):
        r = Client(raise_request_exception=False).get(f"{path}?{query}")
        assert r.status_code == status, (path, r.status_code)
        assert "<h1" in r.content.decode()


def test_a_bad_host_with_a_referer_is_the_sites_400():
    r = Client(raise_request_exception=False).get("/?next=/x", HTTP_HOST="evil.example", HTTP_REFERER="/x")
    assert r.status_code == 400


@pytest.mark.parametrize("path, method", [("/api/v1/inspect", "post"), ("/api/v1/decode", "post"), ("/api/v1/links", "post")])
def test_deeply_nested_json_is_a_400(path, method):
    body = "[" * 3000 + "]" * 3000
    r = getattr(APIClient(raise_request_exception=False), method)(path, data=body, content_type="application/json")
    assert r.status_code == 400, r.content[:300]
    assert r.json()["error"]["code"] == "parse_error" and "nested" in r.json()["error"]["message"]


@pytest.mark.parametrize("version", ["a\nb", "x\"; filename=\"evil.html", "pwned"])
def test_the_schema_takes_no_version_from_the_query(client, version):
    r = Client(raise_request_exception=False).get("/api/schema/", {"version": version})
    assert r.status_code == 400, r.status_code
    assert "evil" not in r.get("Content-Disposition", "")


def test_options_on_the_api_docs_is_no_500():
    r = Client(raise_request_exception=False).options("/api/docs/")
    assert r.status_code == 405 and "GET" in r["Allow"]


def test_an_upload_with_two_files_is_refused_not_half_kept(png_bytes):
    r = APIClient().post("/api/v1/images", {"file": [SimpleUploadedFile("a.png", png_bytes(20, 20), "image/png"),
                                                      SimpleUploadedFile("b.png", png_bytes(20, 20, seed=1), "image/png")]},
                         format="multipart")
    assert r.status_code == 400, r.content
    assert "one image" in r.json()["error"]["message"]
    assert not EncodeJob.objects.exists()


def test_a_search_with_two_images_is_refused(client, png_bytes):
    two = lambda name: [SimpleUploadedFile(f"{i}.png", png_bytes(20, 20, seed=i), "image/png") for i in range(2)]  # noqa: E731
    r = APIClient().post("/api/v1/search", {"file": two("file"), "scope": "public"}, format="multipart")
    assert r.status_code == 400 and "one image" in r.json()["error"]["message"], r.content
    r = client.post("/search/", {"image": two("image"), "scope": "public"})
    assert r.status_code == 400 and "Choose one image to search with." in r.content.decode()


def test_a_malformed_form_body_says_what_is_wrong():
    """The site said only "Bad request."; the API said why."""
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"q\"\r\nX-Pad: {'a' * 20000}\r\n\r\nhello\r\n"
            f"--{boundary}--\r\n").encode()
    r = Client(raise_request_exception=False).generic("POST", "/search/", body, content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 400
    assert "The form could not be read" in r.content.decode() and "header size" in r.content.decode()
