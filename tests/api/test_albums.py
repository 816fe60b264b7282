"""Albums: CRUD, and the permission matrix (anonymous, owner, another user) per visibility."""

from __future__ import annotations

import pytest

from imagehost.models import Album, Picture

pytestmark = pytest.mark.django_db

# who -> expected status for a GET of the album / its pictures, by visibility
READ = {
    "private": {"anon": 404, "owner": 200, "other": 404},
    "unlisted": {"anon": 200, "owner": 200, "other": 200},
    "public": {"anon": 200, "owner": 200, "other": 200},
}
# who -> expected status for PATCH / DELETE
WRITE = {
    "private": {"anon": 401, "other": 404},
    "unlisted": {"anon": 401, "other": 403},
    "public": {"anon": 401, "other": 403},
}


@pytest.mark.parametrize("visibility", ["private", "unlisted", "public"])
@pytest.mark.parametrize("who", ["anon", "owner", "other"])
def test_read_matrix(clients, make_album, make_picture, visibility, who, owner):
    album = make_album(visibility)
    make_picture(owner, album=album, title="in album")
    client = clients[who]
    detail = client.get(f"/api/v1/albums/{album.slug}")
    pictures = client.get(f"/api/v1/albums/{album.slug}/pictures")
    assert detail.status_code == READ[visibility][who]
    assert pictures.status_code == READ[visibility][who]
    if detail.status_code == 200:
        assert detail.json()["id"] == album.slug
        assert detail.json()["visibility"] == visibility
        assert detail.json()["picture_count"] == 1
        assert [p["title"] for p in pictures.json()["results"]] == ["in album"]
    else:
        assert detail.json()["error"]["code"] == "not_found"
        assert pictures.json()["error"]["status"] == 404


@pytest.mark.parametrize("visibility", ["private", "unlisted", "public"])
@pytest.mark.parametrize("who", ["anon", "other"])
def test_write_matrix_refused(clients, make_album, visibility, who):
    album = make_album(visibility)
    client = clients[who]
    patch = client.patch(f"/api/v1/albums/{album.slug}", {"title": "Hijacked"}, format="json")
    delete = client.delete(f"/api/v1/albums/{album.slug}")
    assert patch.status_code == WRITE[visibility][who]
    assert delete.status_code == WRITE[visibility][who]
    assert set(patch.json()["error"]) >= {"status", "code", "message"}
    album.refresh_from_db()
    assert album.title == "Holiday"
    if who == "anon":
        assert patch["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("visibility", ["private", "unlisted", "public"])
def test_owner_can_update_and_delete(owner_client, make_album, make_picture, visibility, owner):
    album = make_album(visibility)
    picture = make_picture(owner, album=album)
    r = owner_client.patch(f"/api/v1/albums/{album.slug}", {"title": "Renamed", "visibility": "public"}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["title"], r.json()["visibility"]) == ("Renamed", "public")
    r = owner_client.delete(f"/api/v1/albums/{album.slug}")
    assert r.status_code == 204
    assert not Album.objects.filter(pk=album.pk).exists()
    picture.refresh_from_db()  # the picture stays in the library, outside any album
    assert picture.album is None


def test_create_and_list_own_albums_only(owner_client, other_client, make_album, other):
    make_album("public", user=other, title="Not mine")
    r = owner_client.post("/api/v1/albums", {"title": "Cats", "visibility": "unlisted"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["title"] == "Cats" and body["visibility"] == "unlisted" and body["owner"] == "owner"
    assert len(body["id"]) > 8  # unguessable slug
    listing = owner_client.get("/api/v1/albums").json()
    assert listing["count"] == 1
    assert [a["title"] for a in listing["results"]] == ["Cats"]


def test_list_and_create_need_auth(anon_client):
    assert anon_client.get("/api/v1/albums").status_code == 401
    r = anon_client.post("/api/v1/albums", {"title": "x"}, format="json")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"title": ""}, "title"),
        ({"title": "ok", "visibility": "secret"}, "visibility"),
        ({}, "title"),
        ({"title": 0}, "title"),  # a JSON number is not text (schemathesis found it accepted)
        ({"title": True}, "title"),
    ],
)
def test_create_rejects_bad_bodies(owner_client, body, field):
    r = owner_client.post("/api/v1/albums", body, format="json")
    assert r.status_code == 400
    assert field in r.json()["error"]["fields"]
    assert r.json()["error"]["message"]


def test_patch_rejects_blank_title(owner_client, make_album):
    album = make_album()
    r = owner_client.patch(f"/api/v1/albums/{album.slug}", {"title": "   "}, format="json")
    assert r.status_code == 400


def test_album_pictures_are_paginated_in_order(owner_client, make_album, make_picture, owner):
    album = make_album()
    for i in range(5):
        make_picture(owner, album=album, title=f"p{i}")
    Picture.objects.filter(album=album, title="p0").update(position=99)
    r = owner_client.get(f"/api/v1/albums/{album.slug}/pictures?page_size=2")
    body = r.json()
    assert body["count"] == 5 and len(body["results"]) == 2 and body["next"]
    last = owner_client.get(f"/api/v1/albums/{album.slug}/pictures?page_size=2&page=3").json()
    assert [p["title"] for p in last["results"]] == ["p0"]
    assert owner_client.get(f"/api/v1/albums/{album.slug}/pictures?page=9").status_code == 404


def test_renaming_or_changing_visibility_moves_updated(owner_client, make_album):
    """``updated`` stayed at the creation time: update_fields left it out, so auto_now never wrote."""
    from datetime import timedelta

    album = make_album()
    for change in ({"title": "Renamed"}, {"visibility": "public"}):
        Album.objects.filter(pk=album.pk).update(updated=album.created - timedelta(days=1))
        before = owner_client.get(f"/api/v1/albums/{album.slug}").json()["updated"]
        assert owner_client.patch(f"/api/v1/albums/{album.slug}", change, format="json").status_code == 200
        assert owner_client.get(f"/api/v1/albums/{album.slug}").json()["updated"] > before, change
