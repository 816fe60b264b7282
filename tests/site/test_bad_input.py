"""Malformed parameters on site pages are a clear 400 page, never a 500."""
from __future__ import annotations

import pytest

from imagehost.services import library, links
from tests.conftest import FAKE_TOKEN  # well-formed; these requests are refused before any decoding

pytestmark = pytest.mark.django_db



def test_album_move_with_a_non_numeric_picture_is_400(client, user):
    album = library.create_album(user, "Pets")
    client.force_login(user)
    r = client.post(f"/albums/{album.slug}/", {"action": "up", "picture": "abc"})
    assert r.status_code == 400 and b"Error 400" in r.content
    r = client.post(f"/albums/{album.slug}/", {"action": "down", "picture": "9" * 30})
    assert r.status_code == 400


def test_width_with_a_non_ascii_digit_is_400(client):
    for w in ("²", "1.5", "-3", "0x10"):
        r = client.get(f"/i/{FAKE_TOKEN}", {"w": w})
        assert r.status_code == 400 and b"Error 400" in r.content, w


def test_shorten_with_an_impossible_expiry_is_400(client, user):
    client.force_login(user)
    r = client.post("/shorten", {"token": FAKE_TOKEN, "expires_at": "2030-13-45T99:99"})
    assert r.status_code == 400 and b"expiry" in r.content


def test_unknown_actions_are_400(client, user, make_picture):
    album = library.create_album(user, "Pets")
    pic = make_picture(owner=user)
    client.force_login(user)
    assert client.post(f"/albums/{album.slug}/", {"action": "explode"}).status_code == 400
    assert client.post(f"/albums/{album.slug}/", {"action": "update", "visibility": "galaxy"}).status_code == 400
    assert client.post(f"/p/{pic.pk}/", {}).status_code == 400


def test_oversized_or_overfull_form_bodies_say_what_is_wrong(client, user):
    """Django refuses a form body over DATA_UPLOAD_MAX_MEMORY_SIZE or with too many fields;
    the site says which (413 for the size, as the API does), not a bare "Bad request"."""
    client.force_login(user)
    big = b"title=" + b"a" * (3 * 1024 * 1024)
    r = client.generic("POST", "/albums/", big, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413 and b"too large" in r.content
    many = "&".join(f"f{i}=1" for i in range(1500)).encode()
    r = client.generic("POST", "/albums/", many, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and b"too many fields" in r.content
    r = client.generic("POST", "/albums/", big, content_type="application/x-www-form-urlencoded", HTTP_ACCEPT="application/json")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("path", ["/accounts/logout/", "/shorten", "/links/some-slug/", "/api/tokens/sharex.sxcu", "/api/tokens/1/revoke"])
def test_a_method_a_page_does_not_take_is_a_405_page(client, user, path):
    """They were blank 405s (Django's HttpResponseNotAllowed), unlike every other error page."""
    client.force_login(user)
    r = client.get(path)
    assert r.status_code == 405 and r["Allow"].startswith("POST")  # logout: "POST, OPTIONS"
    body = r.content.decode()
    assert "<h1>" in body and "does not take GET" in body
    assert client.get(path, HTTP_ACCEPT="application/json").json()["error"]["code"] == "method_not_allowed"


def test_a_path_ending_in_a_bare_dot_names_no_image(client, real_token, user, make_picture):
    """``/i/<token>.`` answered the WebP: a second address for every image, against "an unknown
    extension names no resource"."""
    link = links.get_or_create_short_link(make_picture(user, token=real_token).token, user)
    for url in (f"/i/{real_token}.", f"/s/{link.slug}."):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "Unknown image format" in r.content.decode()
    assert client.get(f"/image?q={real_token}&f=").status_code == 200  # an empty field is the default
