"""A taken-down picture (its token blocked) leaves every listing others see: album grids, the
public gallery's covers and counts, the API's album pictures. Its owner still sees it in their
library and albums, marked as taken down instead of a broken image."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from imagehost.models import Visibility
from imagehost.services import library, tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def album_with_a_takedown(user, make_picture):
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    gone = make_picture(user, album=album, title="Gone")
    kept = make_picture(user, album=album, title="Kept")
    tokens.block_token(gone.token_sha256, reason="test")  # fake tokens: blocked by identity
    return album, gone, kept


def test_album_page_hides_a_taken_down_picture_from_others(client, other_user, album_with_a_takedown):
    album, gone, kept = album_with_a_takedown
    for viewer in (None, other_user):
        if viewer:
            client.force_login(viewer)
        body = client.get(f"/albums/{album.slug}/").content.decode()
        assert f"/t/{kept.token_sha256}?k=" in body and "Kept" in body
        assert gone.token_sha256 not in body and "Gone" not in body
        assert "1 picture" in body and "An album of 1 picture by" in body


def test_album_page_marks_a_taken_down_picture_for_its_owner(client, user, album_with_a_takedown):
    album, gone, kept = album_with_a_takedown
    client.force_login(user)
    body = client.get(f"/albums/{album.slug}/").content.decode()
    assert f'src="{thumb(kept, 384)}"' in body
    assert gone.token_sha256 not in body  # no broken image: it answers 410
    assert "Gone" in body and "Taken down" in body
    assert f'href="/p/{gone.pk}/"' in body  # the owner can still open it and delete it
    # The share card uses a picture that still shows.
    assert f"/t/{kept.token_sha256}.png?k=" in body


def test_public_gallery_skips_a_taken_down_cover_and_does_not_count_it(client, album_with_a_takedown):
    album, gone, kept = album_with_a_takedown
    body = client.get("/albums/public/").content.decode()
    assert f'src="{thumb(kept, 384)}"' in body and gone.token_sha256 not in body
    assert "1 picture ·" in body


def test_public_gallery_album_with_only_taken_down_pictures_shows_empty(client, user, make_picture):
    album = library.create_album(user, "All gone", Visibility.PUBLIC)
    pic = make_picture(user, album=album)
    tokens.block_token(pic.token_sha256)
    body = client.get("/albums/public/").content.decode()
    assert pic.token_sha256 not in body and "0 pictures" in body and "empty" in body


def test_api_album_pictures_leave_out_a_taken_down_picture_for_others(other_user, user, album_with_a_takedown):
    album, gone, kept = album_with_a_takedown
    api = APIClient()
    api.force_authenticate(other_user)
    body = api.get(f"/api/v1/albums/{album.slug}/pictures").json()
    assert [p["id"] for p in body["results"]] == [kept.pk]
    assert api.get(f"/api/v1/albums/{album.slug}").json()["picture_count"] == 1
    anonymous = APIClient().get(f"/api/v1/albums/{album.slug}/pictures").json()
    assert [p["id"] for p in anonymous["results"]] == [kept.pk]

    owner = APIClient()
    owner.force_authenticate(user)
    own = owner.get(f"/api/v1/albums/{album.slug}/pictures").json()["results"]
    assert {p["id"]: p["taken_down"] for p in own} == {gone.pk: True, kept.pk: False}
    assert owner.get(f"/api/v1/albums/{album.slug}").json()["picture_count"] == 2


def test_api_pictures_say_which_are_taken_down(user, album_with_a_takedown):
    album, gone, kept = album_with_a_takedown
    api = APIClient()
    api.force_authenticate(user)
    listed = {p["id"]: p["taken_down"] for p in api.get("/api/v1/pictures").json()["results"]}
    assert listed == {gone.pk: True, kept.pk: False}
    assert api.get(f"/api/v1/pictures/{gone.pk}").json()["taken_down"] is True
    tokens.unblock_token(gone.token_sha256)
    assert api.get(f"/api/v1/pictures/{gone.pk}").json()["taken_down"] is False


def test_library_and_picture_page_mark_a_taken_down_picture(client, user, album_with_a_takedown):
    album, gone, kept = album_with_a_takedown
    client.force_login(user)
    body = client.get("/library/").content.decode()
    assert f'src="{thumb(kept, 320)}"' in body and gone.token_sha256 not in body
    assert "Taken down" in body and f'href="/p/{gone.pk}/"' in body
    page = client.get(f"/p/{gone.pk}/").content.decode()
    assert "taken down" in page.lower() and f'src="http://testserver/i/{gone.token}"' not in page
    assert 'name="action" value="delete"' in page or "Delete" in page  # the owner can still remove it


def thumb(pic, width: int) -> str:
    """A grid's thumbnail address of ``pic`` as the page writes it (HTML-escaped)."""
    from django.utils.html import escape

    from imagehost.views.sharing import thumbnail_url

    return escape(thumbnail_url(pic.token_sha256, width))
