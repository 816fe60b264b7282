"""Pictures: my library (paginated, filter by album), detail, update, delete; others get 404."""

from __future__ import annotations

import pytest

from imagehost.models import Picture

pytestmark = pytest.mark.django_db


def test_list_is_mine_paginated_and_filters_by_album(owner_client, make_album, make_picture, other, owner):
    album = make_album()
    make_picture(owner, album=album, title="a")
    make_picture(owner, title="b")
    make_picture(other, title="theirs")
    body = owner_client.get("/api/v1/pictures").json()
    assert body["count"] == 2
    assert {p["title"] for p in body["results"]} == {"a", "b"}
    first = body["results"][0]
    assert first["token_url"].startswith("http://testserver/i/")
    assert first["token_url"].endswith(first["token"])
    assert (first["width"], first["height"], first["chars"]) == (64, 48, len(first["token"]))
    filtered = owner_client.get(f"/api/v1/pictures?album={album.slug}").json()
    assert [p["title"] for p in filtered["results"]] == ["a"]
    assert filtered["results"][0]["album"] == album.slug


def test_filter_by_someone_elses_album_is_404(owner_client, make_album, other):
    theirs = make_album("public", user=other)
    assert owner_client.get(f"/api/v1/pictures?album={theirs.slug}").status_code == 404


@pytest.mark.parametrize("who, expected", [("anon", 401), ("other", 404)])
def test_others_cannot_see_or_change(clients, make_picture, who, expected, owner):
    picture = make_picture(owner)
    client = clients[who]
    assert client.get(f"/api/v1/pictures/{picture.pk}").status_code == expected
    assert client.patch(f"/api/v1/pictures/{picture.pk}", {"title": "x"}, format="json").status_code == expected
    assert client.delete(f"/api/v1/pictures/{picture.pk}").status_code == expected
    assert Picture.objects.get(pk=picture.pk).title == "pic"
    if who == "anon":
        assert client.get("/api/v1/pictures").status_code == 401


def test_owner_retitles_moves_and_deletes(owner_client, make_album, make_picture, owner):
    picture = make_picture(owner)
    album = make_album()
    r = owner_client.patch(f"/api/v1/pictures/{picture.pk}", {"title": "New", "album": album.slug}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["title"], r.json()["album"]) == ("New", album.slug)
    r = owner_client.patch(f"/api/v1/pictures/{picture.pk}", {"album": None}, format="json")
    assert r.json()["album"] is None
    assert owner_client.get(f"/api/v1/pictures/{picture.pk}").json()["title"] == "New"
    assert owner_client.delete(f"/api/v1/pictures/{picture.pk}").status_code == 204
    assert not Picture.objects.filter(pk=picture.pk).exists()


def test_cannot_move_into_someone_elses_album(owner_client, make_album, make_picture, other, owner):
    picture = make_picture(owner)
    theirs = make_album("public", user=other)
    r = owner_client.patch(f"/api/v1/pictures/{picture.pk}", {"album": theirs.slug}, format="json")
    assert r.status_code == 404
    picture.refresh_from_db()
    assert picture.album is None
