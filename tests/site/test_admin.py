"""The admin: its takedown action and its forms refuse what the site cannot serve, inside the
admin (a message or a form error), never the site's error page or a 500."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from imagehost.api.models import ApiToken
from imagehost.models import Album, BlockedToken, EncodeJob, Picture, ShortLink
from imagehost.services import links, uploads

pytestmark = pytest.mark.django_db


class ChangeFormFields(HTMLParser):
    """What a browser posts from an admin change page's form (``<form id="<model>_form">``)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.select, self.textarea = form_id, False, None, None
        self.fields: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        elif not self.inside:
            return
        elif tag == "input" and attrs.get("name") and attrs.get("type") not in ("submit", "button", "file", "reset"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.fields.setdefault(attrs["name"], []).append(attrs.get("value") or ("on" if attrs.get("type") == "checkbox" else ""))
        elif tag == "select":
            self.select = attrs.get("name")
        elif tag == "option" and self.select and "selected" in attrs:
            self.fields.setdefault(self.select, []).append(attrs.get("value", ""))
        elif tag == "textarea":
            self.textarea = attrs.get("name")
            self.fields.setdefault(self.textarea, []).append("")

    def handle_endtag(self, tag) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.fields[self.textarea][-1] = self.fields[self.textarea][-1].removeprefix("\n")  # as browsers read it
            self.textarea = None

    def handle_data(self, data) -> None:
        if self.textarea:
            self.fields[self.textarea][-1] += data


def change_form(response, model_name: str) -> dict[str, list[str]]:
    """The fields of the admin change form on ``response``, as a browser would post them."""
    assert response.status_code == 200
    parser = ChangeFormFields(f"{model_name}_form")
    parser.feed(response.content.decode())
    assert parser.fields, f"no {model_name}_form on the page"
    return parser.fields


def test_block_action_skips_links_still_waiting_for_their_upload(admin_client, user, png_bytes, make_picture):
    """A reserved link (no token yet) among the selection made the action stop half-way on the
    site's 400 page ("the token is empty"), one of the tokens blocked and no message."""
    reserved = ShortLink.objects.get(job=uploads.submit_uploads([png_bytes()], owner=user).jobs[0])
    live = links.get_or_create_short_link(make_picture(user).token, user)
    already = links.get_or_create_short_link(make_picture(user).token, user)
    admin_client.post("/admin/imagehost/shortlink/", {"action": "block_tokens", "_selected_action": [already.pk]})
    r = admin_client.post(
        "/admin/imagehost/shortlink/", {"action": "block_tokens", "_selected_action": [live.pk, reserved.pk, already.pk]},
        follow=True,
    )
    assert r.status_code == 200 and r.redirect_chain[0][1] == 302
    body = r.content.decode()
    assert "Blocked 1 token(s)" in body and "1 already blocked" in body and "1 still encoding (no token yet)" in body
    assert set(BlockedToken.objects.values_list("token_sha256", flat=True)) == {live.token_sha256, already.token_sha256}


def test_a_short_links_slug_is_checked_in_the_admin(admin_client, client, user, make_picture):
    """A slug with a "/" broke its owner's pages (500, NoReverseMatch)."""
    link = links.get_or_create_short_link(make_picture(user).token, user)
    r = admin_client.post(f"/admin/imagehost/shortlink/{link.pk}/change/", {"slug": "holiday/2024", "owner": user.pk, "job": ""})
    assert r.status_code == 200 and "letters, digits" in r.content.decode()
    link.refresh_from_db()
    assert link.slug != "holiday/2024"
    client.force_login(user)
    assert client.get("/links/").status_code == 200


def test_tokens_are_not_edited_in_the_admin(admin_client, user, make_picture):
    """A token is the picture itself: a garbage one typed into the admin was a 500 (InvalidToken
    on save). Pictures and links come from uploads and the site, so the admin neither edits
    their tokens nor adds them by hand."""
    pic = make_picture(user)
    r = admin_client.post(f"/admin/imagehost/picture/{pic.pk}/change/", {
        "title": "renamed", "token": "garbage token!!", "owner": user.pk, "album": "", "model_name": "taef2",
        "width": 64, "height": 48, "position": 0,
    })
    assert r.status_code == 302
    pic.refresh_from_db()
    assert pic.title == "renamed" and pic.token != "garbage token!!"
    assert admin_client.get("/admin/imagehost/picture/add/").status_code == 403
    assert admin_client.get("/admin/imagehost/shortlink/add/").status_code == 403
    # a job by hand had no original to encode and no deletion key: only uploads make them
    assert admin_client.get("/admin/imagehost/encodejob/add/").status_code == 403


def test_revoking_api_tokens_in_the_admin_says_what_it_did(admin_client, user):
    from imagehost.api.models import ApiToken

    first, _ = ApiToken.issue(user, "one")
    second, _ = ApiToken.issue(user, "two")
    second.revoke()
    r = admin_client.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [first.pk, second.pk]}, follow=True)
    assert "Revoked 1 token(s). 1 were revoked already." in r.content.decode()
    first.refresh_from_db()
    assert first.revoked_at is not None


def test_a_short_links_owner_and_upload_are_not_changed_in_the_admin(admin_client, user, make_picture):
    """Emptying a link's Owner was a 500 (the token's shared anonymous link existed already: one
    per token). Who owns a link, and which upload it was made for, come from the site."""
    picture = make_picture(user)
    shared = links.get_or_create_short_link(picture.token)
    mine = links.get_or_create_short_link(picture.token, user)
    url = f"/admin/imagehost/shortlink/{mine.pk}/change/"
    form = change_form(admin_client.get(url), "shortlink")
    admin_client.raise_request_exception = False
    r = admin_client.post(url, {**form, "owner": "", "job": "", "slug": "renamed-link"})
    assert r.status_code == 302
    mine.refresh_from_db()
    assert mine.slug == "renamed-link" and mine.owner == user
    assert ShortLink.objects.get(pk=shared.pk).owner is None
    assert "owner" not in form and "job" not in form


def test_a_revoked_api_token_cannot_be_restored_in_the_admin(admin_client, user):
    """Clearing Revoked at on the token's change page made the token work again."""
    token, raw = ApiToken.issue(user, "one")
    token.revoke()
    url = f"/admin/api/apitoken/{token.pk}/change/"
    form = change_form(admin_client.get(url), "apitoken")
    r = admin_client.post(url, {**form, "name": "renamed", "revoked_at_0": "", "revoked_at_1": ""})
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.name == "renamed" and token.revoked_at is not None
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/pictures").status_code == 401


def test_a_picture_goes_only_into_its_owners_albums_in_the_admin(admin_client, client, user, other_user, make_picture):
    """The change page put alice's picture into bob's public album, listed there for everyone."""
    bobs = Album.objects.create(owner=other_user, title="bob's", slug="bobs-public-album", visibility="public")
    alices = Album.objects.create(owner=user, title="alice's", slug="alices-album")
    make_picture(user, album=alices, position=0)
    picture = make_picture(user, title="alice secret")
    url = f"/admin/imagehost/picture/{picture.pk}/change/"
    form = change_form(admin_client.get(url), "picture")
    r = admin_client.post(url, {**form, "album": bobs.pk})
    assert r.status_code == 200 and "only into its owner" in r.content.decode()
    picture.refresh_from_db()
    assert picture.album is None
    assert "alice secret" not in client.get("/albums/bobs-public-album/").content.decode()
    r = admin_client.post(url, {**form, "album": alices.pk})
    assert r.status_code == 302
    picture.refresh_from_db()
    assert picture.album == alices and picture.position == 1  # at the end, as the site moves it


def test_owners_and_what_a_token_is_are_not_edited_in_the_admin(admin_client, user, other_user, make_picture, png_bytes):
    """A picture's owner, size and model describe its token; a row's owner (picture, album,
    upload) and an upload's album were the site's ownership rules, bypassed by a dropdown."""
    bobs = Album.objects.create(owner=other_user, title="bob's", slug="bobs-album", visibility="public")
    picture = make_picture(user)
    url = f"/admin/imagehost/picture/{picture.pk}/change/"
    form = change_form(admin_client.get(url), "picture")
    r = admin_client.post(url, {**form, "title": "renamed", "owner": other_user.pk, "width": 1, "height": 1, "model_name": "other"})
    assert r.status_code == 302
    picture.refresh_from_db()
    assert (picture.title, picture.owner, picture.width, picture.height, picture.model_name) == ("renamed", user, 64, 48, "taef2")

    album = Album.objects.create(owner=user, title="mine", slug="mine")
    url = f"/admin/imagehost/album/{album.pk}/change/"
    r = admin_client.post(url, {**change_form(admin_client.get(url), "album"), "title": "renamed", "owner": other_user.pk})
    assert r.status_code == 302
    album.refresh_from_db()
    assert (album.title, album.owner) == ("renamed", user)

    job = uploads.submit_uploads([png_bytes()], owner=user).jobs[0]
    url = f"/admin/imagehost/encodejob/{job.pk}/change/"
    r = admin_client.post(url, {**change_form(admin_client.get(url), "encodejob"), "title": "renamed", "owner": other_user.pk, "album": bobs.pk})
    assert r.status_code == 302
    job.refresh_from_db()
    assert (job.title, job.owner, job.album) == ("renamed", user, None)


def test_deleting_pictures_in_the_admin_deletes_their_short_links(admin_client, client, user, make_picture):
    """The admin's delete page and its "delete selected" action left the pictures' links
    serving them, unlike deleting on the site (``library.delete_picture``)."""
    one, two, kept = make_picture(user), make_picture(user), make_picture(user)
    slugs = {pic.pk: links.get_or_create_short_link(pic.token, user).slug for pic in (one, two, kept)}
    r = admin_client.post(f"/admin/imagehost/picture/{one.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    r = admin_client.post("/admin/imagehost/picture/", {"action": "delete_selected", "_selected_action": [two.pk], "post": "yes"})
    assert r.status_code == 302
    assert list(Picture.objects.all()) == [kept]
    for pk, expected in ((one.pk, 404), (two.pk, 404), (kept.pk, 200)):
        assert client.get(f"/s/{slugs[pk]}/").status_code == expected
        assert client.get(f"/s/{slugs[pk]}/qr.svg").status_code == expected
    assert set(ShortLink.objects.values_list("slug", flat=True)) == {slugs[kept.pk]}


def test_an_album_with_many_pictures_saves_in_the_admin(admin_client, user, make_picture):
    """The album page's inline posted four fields per picture: an album of 260 could not be
    saved (too many fields, 400). Its pictures are a link away, on the pictures' list."""
    album = Album.objects.create(owner=user, title="big", slug="big-album", visibility="public")
    for i in range(260):
        make_picture(user, album=album, position=i)
    url = f"/admin/imagehost/album/{album.pk}/change/"
    page = admin_client.get(url)
    r = admin_client.post(url, {**change_form(page, "album"), "visibility": "private"})
    assert r.status_code == 302
    album.refresh_from_db()
    assert album.visibility == "private" and album.pictures.count() == 260
    listing = f"/admin/imagehost/picture/?album__id__exact={album.pk}"
    assert f'href="{listing}"' in page.content.decode()
    assert "260 pictures" in admin_client.get(listing).content.decode()


CHANGELISTS = ["/admin/imagehost/picture/", "/admin/imagehost/shortlink/", "/admin/imagehost/album/",
               "/admin/imagehost/encodejob/", "/admin/imagehost/blockedtoken/", "/admin/api/apitoken/"]


def test_the_admins_lists_take_as_many_queries_for_30_rows_as_for_5(admin_client, django_user_model, make_picture):
    """Each row's owner, album or blocker was a query of its own (pictures two, the others one)."""

    def add_rows(start: int, stop: int) -> None:
        for i in range(start, stop):
            owner = django_user_model.objects.create_user(f"owner{i}", f"owner{i}@example.com", "pw-pw-pw-pw")
            album = Album.objects.create(owner=owner, title=f"album {i}", slug=f"album-{i}")
            picture = make_picture(owner, album=album)
            links.get_or_create_short_link(picture.token, owner)
            BlockedToken.objects.create(token_sha256=picture.token_sha256, created_by=owner)
            EncodeJob.objects.create(owner=owner, album=album)
            ApiToken.issue(owner, "token")

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    add_rows(0, 5)
    [queries(url) for url in CHANGELISTS]  # the session's first pages
    few = {url: queries(url) for url in CHANGELISTS}
    add_rows(5, 30)
    assert {url: queries(url) for url in CHANGELISTS} == few


def test_admin_pages_do_not_load_uploads_originals_or_list_every_row(admin_client, user, other_user, make_picture, png_bytes):
    """The jobs list SELECTed every queued upload's original, and a short link's page listed
    every upload (original included) in a dropdown; picture and job pages listed every user
    and album; the lists of pictures and links loaded every token, which they do not show."""
    jobs = uploads.submit_uploads([png_bytes(seed=i) for i in range(3)], owner=user).jobs
    reserved = ShortLink.objects.get(job=jobs[0])
    picture = make_picture(user)
    Album.objects.create(owner=other_user, title="holiday in Rome", slug="rome")
    pages = ["/admin/imagehost/encodejob/", f"/admin/imagehost/encodejob/{jobs[0].pk}/change/", "/admin/imagehost/shortlink/",
             f"/admin/imagehost/shortlink/{reserved.pk}/change/", f"/admin/imagehost/picture/{picture.pk}/change/"]
    for url in pages:
        with CaptureQueriesContext(connection) as ctx:
            r = admin_client.get(url)
        assert r.status_code == 200
        assert not [q["sql"] for q in ctx.captured_queries if '"imagehost_encodejob"."source"' in q["sql"]], url
        body = r.content.decode()
        assert "holiday in Rome" not in body and ">bob</option>" not in body, url
    assert str(jobs[0].pk) in admin_client.get(f"/admin/imagehost/shortlink/{reserved.pk}/change/").content.decode()
    links.get_or_create_short_link(picture.token, user)
    for url, token_column in (("/admin/imagehost/picture/", '"imagehost_picture"."token"'),
                              ("/admin/imagehost/shortlink/", '"imagehost_shortlink"."token"')):
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url).status_code == 200
        assert not [q["sql"] for q in ctx.captured_queries if token_column in q["sql"]], url


def test_the_admin_gives_user_names_the_sign_up_rule(admin_client, user, other_user, django_user_model):
    """The admin's user forms took "аlice" (a Cyrillic а) beside alice, which sign-up refuses."""
    password = "Zx9-long-enough-pw"
    r = admin_client.post("/admin/auth/user/add/", {"username": "\u0430lice", "password1": password, "password2": password,
                                                    "usable_password": "true"})
    assert r.status_code == 200 and not django_user_model.objects.filter(username="\u0430lice").exists()
    r = admin_client.post("/admin/auth/user/add/", {"username": "carol", "password1": password, "password2": password,
                                                    "usable_password": "true"})
    assert r.status_code == 302 and django_user_model.objects.filter(username="carol").exists()

    url = f"/admin/auth/user/{other_user.pk}/change/"
    form = change_form(admin_client.get(url), "user")
    for taken_or_not_ascii in ("\u00c9mile", "ALICE"):
        r = admin_client.post(url, {**form, "username": taken_or_not_ascii})
        assert r.status_code == 200
        other_user.refresh_from_db()
        assert other_user.username == "bob"
    assert admin_client.post(url, {**form, "username": "robert"}).status_code == 302

    # a name from before the rule still saves when it is not what changes
    emile = django_user_model.objects.create_user("\u00c9mile", "", "pw-pw-pw-pw")
    url = f"/admin/auth/user/{emile.pk}/change/"
    r = admin_client.post(url, {**change_form(admin_client.get(url), "user"), "email": "emile@example.com"})
    assert r.status_code == 302
    emile.refresh_from_db()
    assert (emile.username, emile.email) == ("\u00c9mile", "emile@example.com")


def test_an_album_added_in_the_admin_gets_an_unguessable_slug(admin_client, user):
    """The slug was typed by hand ("holiday"): an unlisted album's only protection is its slug,
    which the site makes with 72 random bits."""
    page = admin_client.get("/admin/imagehost/album/add/")
    assert 'name="slug"' not in page.content.decode()
    r = admin_client.post("/admin/imagehost/album/add/", {"title": "Holiday", "owner": user.pk, "visibility": "unlisted",
                                                           "slug": "holiday"})
    assert r.status_code == 302, r.content[:500]
    album = Album.objects.get(title="Holiday")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{11}", album.slug), album.slug  # random only: no title words
    slug = album.slug
    r = admin_client.post(f"/admin/imagehost/album/{album.pk}/change/", {"title": "Trip", "visibility": "unlisted", "slug": "trip"})
    album.refresh_from_db()
    assert (album.title, album.slug) == ("Trip", slug)  # renamed, same address


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_titles_saved_in_the_admin_lose_their_bidi_controls(admin_client, user, make_picture):
    """The site's forms and the API clean titles (``library.clean_title``); the admin saved
    "\\u202egnp.exe" as typed, and the share page showed "exe.png"."""
    picture = make_picture(user, title="cat")
    url = f"/admin/imagehost/picture/{picture.pk}/change/"
    r = admin_client.post(url, {**change_form(admin_client.get(url), "picture"), "title": f" \u202egnp.exe{BIDI} "})
    assert r.status_code == 302, r.content[:500]
    picture.refresh_from_db()
    assert picture.title == "gnp.exe"
    r = admin_client.post("/admin/imagehost/album/add/", {"title": "\u2067Holiday\u2069", "owner": user.pk, "visibility": "public"})
    assert r.status_code == 302, r.content[:500]
    album = Album.objects.get(owner=user)
    assert album.title == "Holiday"
    url = f"/admin/imagehost/album/{album.pk}/change/"
    r = admin_client.post(url, {"title": BIDI, "visibility": "public"})
    assert r.status_code == 200 and "An album needs a title." in r.content.decode()
    album.refresh_from_db()
    assert album.title == "Holiday"


def test_migration_cleans_the_titles_saved_before_titles_were_cleaned(user, make_picture, png_bytes):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("imagehost.migrations.0010_titles_without_bidi_controls")
    picture = make_picture(user, title="kept")
    reversed_title = make_picture(user, title="x")
    album = Album.objects.create(owner=user, title="y", slug="album-with-bidi")
    blank_album = Album.objects.create(owner=user, title="z", slug="album-all-bidi")
    job = uploads.submit_upload(png_bytes(32, 24), owner=user, title="job")
    # rows as older builds saved them (update() skips every cleaning)
    Picture.objects.filter(pk=reversed_title.pk).update(title="\u202egnp.exe\u202c")
    Album.objects.filter(pk=album.pk).update(title=f"Tr{BIDI}ip \u200f")
    Album.objects.filter(pk=blank_album.pk).update(title=BIDI)
    EncodeJob.objects.filter(pk=job.pk).update(title="cat\u2066.png")

    migration.clean_titles(apps, None)

    assert Picture.objects.get(pk=reversed_title.pk).title == "gnp.exe"
    assert Picture.objects.get(pk=picture.pk).title == "kept"
    assert Album.objects.get(pk=album.pk).title == "Trip \u200f"  # a direction mark embeds nothing: it stays
    assert Album.objects.get(pk=blank_album.pk).title == "Untitled album"  # an album needs a title
    assert EncodeJob.objects.get(pk=job.pk).title == "cat.png"
