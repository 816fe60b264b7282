"""Issue 11 (part A): custom short links beside the automatic one, a picture's links listed and
managed on its page, and deleting a picture deletes its links (no dangling working link)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from imagehost.models import Picture, ShortLink
from imagehost.services import links

YEAR = date.today().year + 5  # a future expiry in every year this suite runs (January: no DST)

pytestmark = pytest.mark.django_db


def test_custom_slug_is_added_beside_the_automatic_link(client, user, make_picture):
    pic = make_picture(owner=user)
    automatic = links.get_or_create_short_link(pic.token, user)  # every upload has one
    client.force_login(user)
    r = client.post("/shorten", {"token": pic.token, "slug": "pemaquid", "next": f"/p/{pic.pk}/"})
    assert r.status_code == 302, r.content.decode()
    custom = ShortLink.objects.get(slug="pemaquid")
    assert (custom.owner, custom.token) == (user, pic.token)
    assert ShortLink.objects.filter(pk=automatic.pk).exists()  # the automatic one still works
    page = client.get(f"/p/{pic.pk}/").content.decode()
    assert "/s/pemaquid" in page and f"/s/{automatic.slug}" in page
    # The same request again is idempotent, not an error.
    assert client.post("/shorten", {"token": pic.token, "slug": "pemaquid", "next": f"/p/{pic.pk}/"}).status_code == 302
    assert ShortLink.objects.filter(owner=user).count() == 2


def test_deleting_a_picture_deletes_its_links_by_default(client, user, real_token, make_picture):
    pic = make_picture(owner=user, token=real_token)
    link = links.get_or_create_short_link(pic.token, user)
    custom = links.get_or_create_short_link(pic.token, user, slug="my-cat")
    assert client.get(f"/s/{link.slug}").status_code == 200  # cached look-up, then deleted
    client.force_login(user)
    r = client.post(f"/p/{pic.pk}/", {"action": "delete", "confirm": "yes"})
    assert r.status_code == 302
    assert not Picture.objects.filter(pk=pic.pk).exists()
    for slug in (link.slug, custom.slug):
        assert client.get(f"/s/{slug}").status_code == 404
        assert client.get(f"/s/{slug}/").status_code == 404


def test_picture_page_lists_its_links_with_hits_and_local_expiry(client, user, other_user, make_picture):
    pic = make_picture(owner=user)
    expires = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    link = links.get_or_create_short_link(pic.token, user, slug="with-expiry", expires_at=expires)
    ShortLink.objects.filter(pk=link.pk).update(hits=7)
    theirs = links.get_or_create_short_link(pic.token, other_user)  # same token, someone else's link
    client.force_login(user)
    page = client.get(f"/p/{pic.pk}/").content.decode()
    assert "/s/with-expiry" in page and f"/s/{theirs.slug}" not in page
    assert '<td class="hits">7</td>' in page
    assert f'<time class="local-time" datetime="{timezone.localtime(expires).isoformat()}">' in page
    assert '<script src="/static/localtime.js" defer></script>' in page

    r = client.post("/links/with-expiry/", {"action": "clear_expiry", "next": f"/p/{pic.pk}/"})
    assert r.status_code == 302 and r["Location"] == f"/p/{pic.pk}/"
    link.refresh_from_db()
    assert link.expires_at is None


def test_deleting_a_link_asks_first(client, user, other_user, make_picture):
    pic = make_picture(owner=user)
    link = links.get_or_create_short_link(pic.token, user, slug="to-delete")
    client.force_login(user)
    r = client.post("/links/to-delete/", {"action": "delete", "next": f"/p/{pic.pk}/"})
    assert r.status_code == 200 and 'name="confirm" value="yes"' in r.content.decode()
    assert ShortLink.objects.filter(pk=link.pk).exists()
    r = client.post("/links/to-delete/", {"action": "delete", "confirm": "yes", "next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == "/library/"  # never an open redirect
    assert not ShortLink.objects.filter(pk=link.pk).exists()
    assert client.get("/s/to-delete").status_code == 404
    mine = links.get_or_create_short_link(pic.token, user)
    client.force_login(other_user)
    assert client.post(f"/links/{mine.slug}/", {"action": "delete", "confirm": "yes"}).status_code == 404
    assert client.post(f"/links/{mine.slug}/", {"action": "nope"}).status_code == 404  # not theirs, first
    client.force_login(user)
    assert client.post(f"/links/{mine.slug}/", {"action": "nope"}).status_code == 400
    assert ShortLink.objects.filter(pk=mine.pk).exists()


def test_deleting_a_picture_asks_first_and_can_keep_the_links(client, user, make_picture):
    pic = make_picture(owner=user)
    link = links.get_or_create_short_link(pic.token, user)
    client.force_login(user)
    r = client.post(f"/p/{pic.pk}/", {"action": "delete"})
    body = r.content.decode()
    assert r.status_code == 200 and Picture.objects.filter(pk=pic.pk).exists()
    assert 'name="links" value="delete" checked' in body and f"/s/{link.slug}" in body
    client.post(f"/p/{pic.pk}/", {"action": "delete", "confirm": "yes", "links": "keep"})
    assert not Picture.objects.filter(pk=pic.pk).exists()
    assert ShortLink.objects.filter(pk=link.pk).exists()
    assert f"/s/{link.slug}" in client.get("/links/").content.decode()  # still visible somewhere


def test_links_shared_with_another_copy_of_the_picture_stay(client, user, make_picture):
    pic = make_picture(owner=user)
    twin = make_picture(owner=user, token=pic.token)
    link = links.get_or_create_short_link(pic.token, user)
    client.force_login(user)
    client.post(f"/p/{pic.pk}/", {"action": "delete", "confirm": "yes"})
    assert ShortLink.objects.filter(pk=link.pk).exists()
    assert f"/s/{link.slug}" in client.get(f"/p/{twin.pk}/").content.decode()


def test_deleting_an_album_asks_first(client, user, make_picture):
    from imagehost.models import Album
    from imagehost.services import library

    album = library.create_album(user, "Trip")
    library.move_picture_to_album(make_picture(owner=user), album)
    client.force_login(user)
    r = client.post(f"/albums/{album.slug}/", {"action": "delete"})
    assert r.status_code == 200 and "Delete the album" in r.content.decode() and Album.objects.filter(pk=album.pk).exists()
    r = client.post(f"/albums/{album.slug}/", {"action": "delete", "confirm": "yes"})
    assert r.status_code == 302 and not Album.objects.filter(pk=album.pk).exists()


def test_library_search_by_title(client, user, other_user, make_picture):
    make_picture(owner=user, title="Cat on a mat")
    make_picture(owner=user, title="Dog in the fog")
    make_picture(owner=other_user, title="Their cat")
    client.force_login(user)
    page = client.get("/library/", {"q": "CAT"}).content.decode()
    assert "Cat on a mat" in page and "Dog in the fog" not in page and "Their cat" not in page
    assert "Dog in the fog" in client.get("/library/").content.decode()
    assert 'No picture has “zebra” in its title' in client.get("/library/", {"q": "zebra"}).content.decode()
    assert client.get("/library/", {"q": "x" * 201}).status_code == 400


@pytest.mark.parametrize(
    "next_url, referer, expected",
    [
        ("/p/1/", None, "/p/1/"),
        (None, "http://testserver/library/?q=cat", "/library/?q=cat"),
        ("https://evil.example/x", None, None),
        ("//evil.example/x", None, None),
        ("/\\evil.example", None, None),
        ("http://testserver/\\evil.example/phish", None, None),
        (None, "http://testserver/\\evil.example/phish", None),
        ("/a\\b", None, None),
        (None, "http://evil.example/library/", None),
        ("javascript:alert(1)", None, None),
    ],
)
def test_error_pages_link_back_only_on_this_site(client, user, next_url, referer, expected):
    client.force_login(user)
    data = {"token": "bad token!"} | ({"next": next_url} if next_url else {})
    headers = {"HTTP_REFERER": referer} if referer else {}
    r = client.post("/shorten", data, **headers)
    assert r.status_code == 400
    body = r.content.decode()
    if expected is None:
        assert 'id="error-back"' not in body
    else:
        assert f'<a href="{expected}" id="error-back">' in body


def test_a_409_links_back_to_the_picture(client, user, other_user, make_picture):
    links.get_or_create_short_link(make_picture(owner=other_user).token, other_user, slug="taken-slug")
    pic = make_picture(owner=user)
    client.force_login(user)
    r = client.post("/shorten", {"token": pic.token, "slug": "taken-slug", "next": f"/p/{pic.pk}/"})
    assert r.status_code == 409
    assert f'<a href="/p/{pic.pk}/" id="error-back">' in r.content.decode()


@pytest.mark.django_db(transaction=True)
def test_concurrent_plain_shortening_makes_one_link_per_owner_and_token(user):
    """Without a unique (owner, token) constraint (custom links sit beside the automatic one),
    simultaneous requests must still agree on one automatic link."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("threads writing at once need PostgreSQL")
    from tests.conftest import fake_token

    for round_ in range(5):
        token, barrier, slugs = fake_token(900 + round_), threading.Barrier(4), []

        def shorten() -> None:
            try:
                barrier.wait()
                slugs.append(links.get_or_create_short_link(token, user).slug)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=shorten) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(slugs) == 4 and len(set(slugs)) == 1, slugs
        assert ShortLink.objects.filter(owner=user, token=token).count() == 1


def test_pages_and_the_api_share_a_live_link_never_an_expired_one(client, user, make_picture):
    """A custom link that expired kept being the album grid's share link, its og:image, the
    picture page's share tools and the API's short_url (all 410) while a permanent link of the
    same picture still worked. The link shown is a live one, permanent first, then the newest."""
    from imagehost.services import library

    album = library.create_album(user, "Holiday", visibility="public")
    pic = make_picture(owner=user, album=album)
    automatic = links.get_or_create_short_link(pic.token, user)
    party = links.get_or_create_short_link(pic.token, user, slug="party-night", expires_at=timezone.now() + timedelta(hours=1))
    ShortLink.objects.filter(pk=party.pk).update(expires_at=timezone.now() - timedelta(minutes=1))  # an hour later
    assert client.get("/s/party-night/").status_code == 410

    album_page = client.get(f"/albums/{album.slug}/").content.decode()
    assert "/s/party-night" not in album_page and f"/s/{automatic.slug}" in album_page
    client.force_login(user)
    share_tools = client.get(f"/p/{pic.pk}/").content.decode().split('id="short-links"')[0]
    assert "/s/party-night" not in share_tools and f"/s/{automatic.slug}" in share_tools
    assert client.get(f"/api/v1/pictures/{pic.pk}").json()["short_url"].endswith(f"/s/{automatic.slug}")

    ShortLink.objects.filter(pk=automatic.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert client.get(f"/api/v1/pictures/{pic.pk}").json()["short_url"] is None  # no live link: none shown


def test_an_expiry_is_read_in_the_zone_it_names(client, user, make_picture):
    """The field is the viewer's wall time: localtime.js sends it as an instant (ISO with its
    offset); without the script the server reads it as UTC, and the page says so."""
    pic = make_picture(owner=user)
    client.force_login(user)
    assert '<span class="small zone-hint">UTC</span>' in client.get(f"/p/{pic.pk}/").content.decode()
    client.post("/shorten", {"token": pic.token, "slug": "zoned", "expires_at": f"{YEAR}-01-15T20:30:00.000Z"})
    client.post("/shorten", {"token": pic.token, "slug": "plain", "expires_at": f"{YEAR}-01-15T15:30"})
    stored = dict(ShortLink.objects.filter(slug__in=["zoned", "plain"]).values_list("slug", "expires_at"))
    assert stored["zoned"].isoformat() == f"{YEAR}-01-15T20:30:00+00:00"
    assert stored["plain"].isoformat() == f"{YEAR}-01-15T15:30:00+00:00"


def test_the_picture_pages_link_form_keeps_what_was_typed_when_refused(client, user, other_user, make_picture):
    """A slug someone has, or an expiry in the past, replaced the picture page with an error page
    and lost the slug and expiry typed: the page comes back with the error beside the form."""
    pic = make_picture(owner=user)
    links.get_or_create_short_link(make_picture(other_user).token, other_user, slug="taken-slug")
    client.force_login(user)
    r = client.post(f"/p/{pic.pk}/", {"action": "link", "slug": "taken-slug", "expires_at": f"{YEAR}-05-01T10:00"})
    body = r.content.decode()
    assert r.status_code == 409 and "/s/taken-slug is taken" in body and 'class="form-error"' in body
    assert 'name="slug" value="taken-slug"' in body and f'value="{YEAR}-05-01T10:00"' in body
    assert '<h1 dir="auto">' in body and 'id="short-links"' in body  # the picture page itself
    r = client.post(f"/p/{pic.pk}/", {"action": "link", "slug": "fine-slug", "expires_at": "2001-01-01T10:00"})
    assert r.status_code == 400 and "in the future" in r.content.decode() and 'value="fine-slug"' in r.content.decode()
    assert not ShortLink.objects.filter(owner=user).exists()
    r = client.post(f"/p/{pic.pk}/", {"action": "link", "slug": "fine-slug", "expires_at": ""})
    assert r.status_code == 302 and r["Location"] == f"/p/{pic.pk}/#short-links"
    assert ShortLink.objects.get(owner=user).slug == "fine-slug"
    assert "Short link: /s/fine-slug" in client.get(r["Location"]).content.decode()
    page = client.get(f"/p/{pic.pk}/").content.decode()
    assert f'action="/p/{pic.pk}/"' in page and 'name="action" value="link"' in page


def test_the_picture_pages_link_form_counts_against_the_links_limit(client, user, make_picture, settings):
    """It skipped the limit /shorten and the API have; each new expiry adds a link."""
    settings.EMMM_SHORTLINK_RATE = "2/h"
    pic = make_picture(owner=user)
    client.force_login(user)
    codes = [client.post(f"/p/{pic.pk}/", {"action": "link", "expires_at": f"{YEAR}-05-0{i + 1}T10:00"}).status_code for i in range(3)]
    assert codes == [302, 302, 429] and ShortLink.objects.filter(owner=user).count() == 2


def _uploaded_twice(user, png_bytes, real_encoded):
    """The same file uploaded twice by one user (an accident): two pictures, one token, each
    upload with its own reserved link."""
    from imagehost.services import jobs, uploads

    done = []
    for _ in range(2):
        job = uploads.submit_upload(png_bytes(32, 24), owner=user)
        jobs.claim(job.pk)
        done.append(jobs.complete(job.pk, real_encoded))
    return done


def test_a_picture_shows_a_link_that_outlives_its_duplicate(client, user, png_bytes, real_encoded):
    """The first picture's page, album grid, API answer and job answer all showed the second
    upload's link, which went with that duplicate when it was deleted."""
    from imagehost.services import library

    first, second = _uploaded_twice(user, png_bytes, real_encoded)
    own = ShortLink.objects.get(job=first)
    album = library.create_album(user, "Twins")
    library.move_picture_to_album(first.picture, album)
    client.force_login(user)
    assert client.get(f"/api/v1/pictures/{first.picture.pk}").json()["short_url"].endswith(f"/s/{own.slug}")
    job_answer = client.get(f"/api/v1/jobs/{first.pk}").json()
    assert job_answer["short_url"] == job_answer["picture"]["short_url"]
    page = client.get(f"/p/{first.picture.pk}/").content.decode()
    assert f"/s/{own.slug}/qr.svg" in page  # the share tools (QR code, snippets) use its link
    assert f"/s/{own.slug}" in client.get(f"/albums/{album.slug}/").content.decode()

    assert client.delete(f"/api/v1/pictures/{second.picture.pk}").status_code == 204
    assert ShortLink.objects.filter(pk=own.pk).exists()
    assert client.get(f"/s/{own.slug}").status_code == 200


def test_the_confirm_page_lists_only_the_links_that_go(client, user, png_bytes, real_encoded):
    """With a duplicate left, the confirm page said every link would answer "not found", then
    the delete kept all but the upload's own one."""
    first, second = _uploaded_twice(user, png_bytes, real_encoded)
    own, twins = ShortLink.objects.get(job=first), ShortLink.objects.get(job=second)
    custom = links.get_or_create_short_link(first.picture.token, user, slug="both-copies")
    client.force_login(user)
    page = client.post(f"/p/{first.picture.pk}/", {"action": "delete"}).content.decode()
    assert f"/s/{own.slug}" in page
    assert f"/s/{twins.slug}" not in page and "/s/both-copies" not in page
    assert "stay: another copy of this picture" in page
    client.post(f"/p/{first.picture.pk}/", {"action": "delete", "confirm": "yes", "links": "delete"})
    assert not ShortLink.objects.filter(pk=own.pk).exists()
    assert ShortLink.objects.filter(pk__in=[twins.pk, custom.pk]).count() == 2
