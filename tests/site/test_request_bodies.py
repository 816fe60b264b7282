"""How much of a request body the site reads and keeps: a form that takes no files refuses a
file part as soon as it arrives, and the upload page holds its files to its own bounds before
anything (the CSRF check included) reads them."""
from __future__ import annotations

import io
import logging

import pytest
from django.test import Client

from tests.conftest import small_image

BOUNDARY = "emmm-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


class CountingInput(io.BytesIO):
    """A request body that records how many bytes the server read from it."""

    taken = 0

    def read(self, size=-1):
        data = super().read(size)
        self.taken += len(data)
        return data

    def readline(self, size=-1):
        data = super().readline(size)
        self.taken += len(data)
        return data


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> bytes:
    """A multipart/form-data body: ``fields`` as text parts, then ``files`` as (field, filename, bytes)."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for field, filename, data in files:
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def post_counted(client: Client, path: str, body: bytes, **extra):
    stream = CountingInput(body)
    response = client.post(path, body, content_type=MULTIPART, **{"wsgi.input": stream}, **extra)
    return response, stream.taken


@pytest.fixture
def csrf_client():
    """A browser-like client: the CSRF middleware checks (and so reads) every form it is sent."""
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    return client


def csrf_secret(client: Client) -> str:
    from django.conf import settings

    return client.cookies[settings.CSRF_COOKIE_NAME].value


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/", "/shorten", "/api/tokens/"])
def test_a_file_sent_to_a_form_that_takes_none_is_refused_as_it_arrives(csrf_client, path):
    """A 5 MB file posted to the sign-in form was read and kept in memory (up to about 105 MB:
    the upload page's bound applied to every form) before the CSRF check even looked at it."""
    fields = {"csrfmiddlewaretoken": csrf_secret(csrf_client), "username": "someone", "password": "x"}
    body = multipart(fields, [("avatar", "big.png", b"\0" * 5_000_000)])
    logger, logged = logging.getLogger("django.security.FilesNotAccepted"), []
    handler = logging.Handler()
    handler.emit = logged.append
    logger.addHandler(handler)
    try:
        r, taken = post_counted(csrf_client, path, body)
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 400
    assert "takes no files" in r.content.decode()
    assert taken < 500_000  # stopped at the file's part header, not after its 5 MB
    assert [(r.levelname, r.exc_info) for r in logged] == [("WARNING", None)]  # a client's mistake: one line


@pytest.mark.django_db
def test_the_api_refuses_a_form_where_an_operation_takes_json(user):
    """A signed-in browser's API request: its CSRF check reads the form through the view's own
    parsers, which take JSON only: 415 before a byte of the body is read."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/accounts/login/")
    body = multipart({"csrfmiddlewaretoken": csrf_secret(client), "name": "Trips"}, [("cover", "c.png", b"\0" * 3_000_000)])
    r, taken = post_counted(client, "/api/v1/albums", body)
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert taken == 0


@pytest.mark.django_db
def test_an_empty_file_field_is_no_file(csrf_client, user):
    """A browser sends an unchosen file input as a part with an empty filename: that is no file."""
    fields = {"csrfmiddlewaretoken": csrf_secret(csrf_client), "username": user.username, "password": "wrong"}
    r, _ = post_counted(csrf_client, "/accounts/login/", multipart(fields, [("extra", "", b"")]))
    assert r.status_code == 400  # the form again, with its "wrong password" message
    assert "Please enter a correct username and password" in r.content.decode()


@pytest.mark.django_db
def test_the_upload_page_refuses_an_oversize_body_before_reading_it(csrf_client, settings):
    """The CSRF check read the whole body (a declared 500 MB was read to the end) before the
    upload view answered 413 from its Content-Length."""
    settings.EMMM_MAX_UPLOAD_BYTES = 100_000
    settings.EMMM_MAX_FILES_PER_UPLOAD = 2
    fields = {"csrfmiddlewaretoken": csrf_secret(csrf_client)}
    body = multipart(fields, [("images", f"{n}.png", b"\0" * 90_000) for n in range(4)])
    r, taken = post_counted(csrf_client, "/", body)
    assert r.status_code == 413
    assert taken == 0


@pytest.mark.django_db
def test_the_upload_page_refuses_a_file_over_the_limit_as_it_arrives(csrf_client, settings):
    settings.EMMM_MAX_UPLOAD_BYTES = 100_000
    settings.EMMM_MAX_FILES_PER_UPLOAD = 4
    fields = {"csrfmiddlewaretoken": csrf_secret(csrf_client)}
    body = multipart(fields, [("images", "big.png", b"\0" * 300_000)])
    r, taken = post_counted(csrf_client, "/", body)
    assert r.status_code == 413
    assert "100,000 bytes" in r.content.decode()
    assert taken < 250_000  # stopped once the file passed the limit


@pytest.mark.django_db
def test_the_upload_page_refuses_more_files_than_it_takes_as_they_arrive(csrf_client, settings):
    settings.EMMM_MAX_FILES_PER_UPLOAD = 2
    fields = {"csrfmiddlewaretoken": csrf_secret(csrf_client)}
    body = multipart(fields, [("images", f"{n}.png", small_image(8, 8, n)) for n in range(3)])
    r, _ = post_counted(csrf_client, "/", body)
    assert r.status_code == 400
    assert "at most 2 files" in r.content.decode()


@pytest.mark.django_db
def test_the_upload_page_still_checks_csrf_and_takes_several_files(csrf_client, settings):
    files = [("images", f"{n}.png", small_image(16, 16, n)) for n in range(2)]
    r, _ = post_counted(csrf_client, "/", multipart({"csrfmiddlewaretoken": "x" * 32}, files))
    assert r.status_code == 403
    r, _ = post_counted(csrf_client, "/", multipart({"csrfmiddlewaretoken": csrf_secret(csrf_client)}, files))
    assert r.status_code == 303
    assert r["Location"].startswith("/jobs/?ids=")
    assert len(r["Location"].split("ids=")[1].split("%2C")) == 2


@pytest.mark.django_db
def test_a_refused_upload_comes_back_beside_the_form_with_the_choices_kept(user):
    """Without JavaScript a refused upload (not an image, too many pixels) went to the error page:
    "back" lost the title, album, link budget and kind the user had set."""
    from imagehost.models import Album, EncodeJob

    client = Client()
    client.force_login(user)
    album = Album.objects.create(owner=user, title="Trips", slug="trips")
    fields = {"title": "Beach <day>", "album": "trips", "budget": "chat", "kind": "avif"}
    r, _ = post_counted(client, "/", multipart(fields, [("images", "notes.png", b"not an image at all")]))
    assert r.status_code == 415
    page = r.content.decode()
    assert 'role="alert"' in page and "choose the files again" in page.lower()
    assert 'name="title" maxlength="200" value="Beach &lt;day&gt;"' in page
    assert f'<option value="{album.slug}" selected>' in page
    assert 'value="chat" checked' in page and 'value="avif" checked' in page
    assert 'value="vae" checked' not in page
    assert r["Cache-Control"] == "no-store" and "Accept" in r["Vary"]
    assert EncodeJob.objects.count() == 0


@pytest.mark.django_db
def test_a_script_client_still_gets_the_json_refusal_of_the_upload_form(client):
    r, _ = post_counted(client, "/", multipart({}, [("images", "x.png", b"nope")]), HTTP_ACCEPT="application/json")
    assert r.status_code == 415 and r.json()["error"]["status"] == 415


@pytest.mark.django_db
def test_an_upload_without_files_says_so_beside_the_form(client):
    r, _ = post_counted(client, "/", multipart({"title": "x"}, [("images", "", b"")]))
    assert r.status_code == 400
    page = r.content.decode()
    assert "Choose at least one image to upload." in page and "Choose the files again" not in page
    assert 'value="x"' in page
