"""Accounts, library, picture pages, albums and their visibility."""
from __future__ import annotations

import re

import pytest
from django.core import mail

from imagehost import selectors
from imagehost.services import errors, library, uploads
from imagehost.models import Album, BlockedToken, Picture, Visibility

pytestmark = pytest.mark.django_db


def test_signup_login_logout_password_change_and_reset(client, django_user_model):
    r = client.post("/accounts/signup/", {"username": "carol", "password1": "a-long-pass-9876", "password2": "a-long-pass-9876"})
    assert r.status_code == 302 and r["Location"] == "/library/"
    assert client.get("/library/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/library/").status_code == 302  # to the login page
    assert client.post("/accounts/login/", {"username": "carol", "password": "wrong"}).status_code == 400
    assert client.post("/accounts/login/", {"username": "carol", "password": "a-long-pass-9876"}).status_code == 302
    r = client.post("/accounts/password_change/", {"old_password": "a-long-pass-9876", "new_password1": "other-pass-5432", "new_password2": "other-pass-5432"})
    assert r.status_code == 302
    user = django_user_model.objects.get(username="carol")
    user.email = "carol@example.com"
    user.save()
    client.post("/accounts/logout/")
    assert client.post("/accounts/password_reset/", {"email": "carol@example.com"}).status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    r = client.get(link, follow=True)
    r = client.post(r.redirect_chain[-1][0], {"new_password1": "third-pass-1111", "new_password2": "third-pass-1111"})
    assert r.status_code == 302
    assert client.login(username="carol", password="third-pass-1111")



def test_signup_racing_another_for_the_same_name_is_a_form_error(client, django_user_model, monkeypatch):
    """Two sign-ups for one new name: both pass validation, one INSERT wins. The other gets the
    form back with the usual message, not a 500."""
    from imagehost.views.accounts import SignupForm

    real_is_valid = SignupForm.is_valid

    def valid_then_the_other_request_commits(self):
        valid = real_is_valid(self)
        django_user_model.objects.create_user("dave", password="the-other-request-1")  # it got there first
        return valid

    monkeypatch.setattr(SignupForm, "is_valid", valid_then_the_other_request_commits)
    r = client.post("/accounts/signup/", {"username": "dave", "password1": "a-long-pass-9876", "password2": "a-long-pass-9876"})
    assert r.status_code == 400
    assert "A user with that username already exists." in r.content.decode()
    assert django_user_model.objects.filter(username="dave").count() == 1
    assert client.get("/library/").status_code == 302  # not signed in as anyone

def test_library_is_paginated_and_private(client, settings, user, other_user, make_picture):
    settings.EMMM_PAGE_SIZE = 2
    for i in range(3):
        make_picture(owner=user, title=f"mine {i}")
    make_picture(owner=other_user, title="not mine")
    client.force_login(user)
    p1 = client.get("/library/").content.decode()
    p2 = client.get("/library/?page=2").content.decode()
    assert "Page 1 of 2" in p1 and p1.count("<li><a href=\"/p/") == 2 and p2.count("<li><a href=\"/p/") == 1
    assert "not mine" not in p1 + p2


def test_picture_page_actions(client, user, other_user, make_picture):
    pic = make_picture(owner=user, title="cat")
    theirs = make_picture(owner=other_user)
    album = library.create_album(user, "Pets")
    client.force_login(user)
    r = client.get(f"/p/{pic.pk}/")
    assert r.status_code == 200 and f"/i/{pic.token}" in r.content.decode()
    assert client.get(f"/p/{theirs.pk}/").status_code == 404
    client.post(f"/p/{pic.pk}/", {"action": "title", "title": "Cat on a mat"})
    client.post(f"/p/{pic.pk}/", {"action": "album", "album": album.slug})
    pic.refresh_from_db()
    assert pic.title == "Cat on a mat" and pic.album_id == album.pk
    assert client.post(f"/p/{pic.pk}/", {"action": "nope"}).status_code == 400
    client.post(f"/p/{pic.pk}/", {"action": "delete"})  # issue 11: a confirm page first
    assert Picture.objects.filter(pk=pic.pk).exists()
    client.post(f"/p/{pic.pk}/", {"action": "delete", "confirm": "yes"})
    assert not Picture.objects.filter(pk=pic.pk).exists()


def test_album_crud_visibility_and_order(client, user, other_user, make_picture):
    client.force_login(user)
    r = client.post("/albums/", {"title": "Trip", "visibility": "private"})
    album = Album.objects.get(owner=user)
    assert r["Location"] == f"/albums/{album.slug}/"
    assert "Album “Trip” created." in client.get(r["Location"]).content.decode()
    pics = [make_picture(owner=user) for _ in range(3)]
    for p in pics:
        library.move_picture_to_album(p, album)
    assert [p.pk for p in album.pictures.order_by("position")] == [p.pk for p in pics]
    client.post(f"/albums/{album.slug}/", {"action": "down", "picture": pics[0].pk})
    assert [p.pk for p in album.pictures.order_by("position")] == [pics[1].pk, pics[0].pk, pics[2].pk]
    client.post(f"/albums/{album.slug}/", {"action": "reorder", "order": f"{pics[2].pk},{pics[1].pk},{pics[0].pk}"})
    assert [p.pk for p in album.pictures.order_by("position")] == [pics[2].pk, pics[1].pk, pics[0].pk]
    assert client.post(f"/albums/{album.slug}/", {"action": "reorder", "order": f"{pics[2].pk}"}).status_code == 400

    other = client.__class__()
    assert other.get(f"/albums/{album.slug}/").status_code == 404  # private
    other.force_login(other_user)
    assert other.get(f"/albums/{album.slug}/").status_code == 404
    client.post(f"/albums/{album.slug}/", {"action": "update", "title": "Trip 2026", "visibility": "unlisted"})
    album.refresh_from_db()
    assert album.title == "Trip 2026" and album.visibility == Visibility.UNLISTED
    page = other.get(f"/albums/{album.slug}/")
    assert page.status_code == 200 and "Trip 2026" in page.content.decode()
    assert other.post(f"/albums/{album.slug}/", {"action": "delete"}).status_code == 404
    assert "Trip 2026" not in client.get("/albums/public/").content.decode()
    library.update_album(album, visibility="public")
    assert "Trip 2026" in client.get("/albums/public/").content.decode()
    client.post(f"/albums/{album.slug}/", {"action": "delete", "confirm": "yes"})  # issue 11: after a confirm page
    assert not Album.objects.exists() and Picture.objects.filter(owner=user).count() == 3


def test_cannot_upload_into_someone_elses_album(user, other_user, png_bytes):
    album = library.create_album(other_user, "Theirs")
    with pytest.raises(errors.InvalidInput):
        uploads.submit_upload(png_bytes(16, 16), owner=user, album=album)


def test_admin_pages_and_takedown(admin_client, real_token, make_picture, user):
    pic = make_picture(owner=user)
    library.create_album(user, "A")
    for model in ("picture", "album", "shortlink", "encodejob", "blockedtoken"):
        assert admin_client.get(f"/admin/imagehost/{model}/").status_code == 200
        added_by_hand = model not in ("picture", "shortlink", "encodejob")  # those come from uploads and the site
        assert admin_client.get(f"/admin/imagehost/{model}/add/").status_code == (200 if added_by_hand else 403)
    assert admin_client.get(f"/admin/imagehost/picture/{pic.pk}/change/").status_code == 200
    r = admin_client.post("/admin/imagehost/blockedtoken/add/", {"token_or_hash": f"http://x/i/{real_token}.png", "reason": "dmca"})
    assert r.status_code == 302
    assert admin_client.get(f"/i/{real_token}").status_code == 410



def test_admin_blocking_a_blocked_token_again_says_so(admin_client, real_token):
    """Was an IntegrityError 500: the add form never checked that the token was already blocked."""
    assert admin_client.post("/admin/imagehost/blockedtoken/add/", {"token_or_hash": real_token, "reason": "dmca"}).status_code == 302
    r = admin_client.post("/admin/imagehost/blockedtoken/add/", {"token_or_hash": f"http://x/i/{real_token}", "reason": "again"})
    assert r.status_code == 200 and "already blocked" in r.content.decode()
    assert BlockedToken.objects.count() == 1


def test_admin_changing_a_block_to_another_token_unblocks_the_first_at_once(admin_client, token_pool):
    first, second = token_pool(0).token, token_pool(1).token
    admin_client.post("/admin/imagehost/blockedtoken/add/", {"token_or_hash": first, "reason": "dmca"})
    assert admin_client.get(f"/i/{first}").status_code == 410  # the blocked flag is now cached
    block = BlockedToken.objects.get()
    r = admin_client.post(f"/admin/imagehost/blockedtoken/{block.pk}/change/", {"token_or_hash": second, "reason": "the other one"})
    assert r.status_code == 302
    assert admin_client.get(f"/i/{second}").status_code == 410
    assert admin_client.get(f"/i/{first}").status_code == 200  # not a stale cached 410


def test_moving_a_picture_up_after_it_left_the_album_is_a_400(user, make_picture):
    """The up/down buttons race a move out of the album (another tab, the API): the request's
    picture still names the album. Was a ValueError 500 (``ids.index``)."""
    album = library.create_album(user, "Order")
    first, second = make_picture(user, album=album), make_picture(user, album=album)
    stale = Picture.objects.select_related("album").get(pk=second.pk)  # what the request loaded
    library.move_picture_to_album(Picture.objects.get(pk=second.pk), None)  # meanwhile: taken out
    with pytest.raises(errors.InvalidInput):
        library.move_picture_in_album(stale, -1)
    assert list(selectors.album_pictures(album, user).values_list("pk", flat=True)) == [first.pk]


def test_moving_a_picture_writes_only_the_rows_whose_place_changed(client, user, make_picture):
    """↑ on one picture rewrote every picture of the album, one UPDATE each, under the album's
    lock (300 pictures: 313 queries); a new order given whole was also one UPDATE per row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_to_move(count: int) -> tuple[int, int, str]:
        album = library.create_album(user, f"A{count}", Visibility.PUBLIC)
        pics = [make_picture(user, album=album, title=f"p{i}") for i in range(count)]
        with CaptureQueriesContext(connection) as moved:
            r = client.post(f"/albums/{album.slug}/", {"action": "up", "picture": pics[-1].pk})
        assert r.status_code == 302
        order = list(selectors.album_pictures(album, user).values_list("pk", flat=True))
        assert order == [p.pk for p in pics[:-2]] + [pics[-1].pk, pics[-2].pk]
        with CaptureQueriesContext(connection) as reordered:
            client.post(f"/albums/{album.slug}/", {"action": "reorder", "order": ",".join(str(pk) for pk in reversed(order))})
        assert list(selectors.album_pictures(album, user).values_list("pk", flat=True)) == order[::-1]
        updates = lambda queries: sum(q["sql"].lstrip().upper().startswith("UPDATE") for q in queries)  # noqa: E731
        return len(moved.captured_queries), updates(reordered.captured_queries), client.get(r["Location"]).content.decode()

    client.force_login(user)
    few, many = queries_to_move(3), queries_to_move(30)
    assert few[0] == many[0], (few[0], many[0])
    assert few[1] == many[1] == 1, (few[1], many[1])
    assert "is now 29 of 30" in many[2] and "is now 2 of 3" in few[2]
