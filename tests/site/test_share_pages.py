"""Share pages, album pages and the gallery: whose title a link shows, album addresses, page
weight, caching of signed-in pages, indexing, canonical addresses, expiring links, bidi titles."""
from __future__ import annotations

import datetime
import html
import re

import pytest
from django.test import Client
from django.utils import timezone

from codec.token import to_text
from imagehost.models import Album, EncodeJob, ShortLink, Visibility
from imagehost.services import library, links, tokens
from imagehost.services.errors import InvalidInput

pytestmark = pytest.mark.django_db


def _meta(body: str, prop: str) -> str | None:
    m = re.search(rf'<meta (?:property|name)="{re.escape(prop)}" content="([^"]*)"', body)
    return html.unescape(m.group(1)) if m else None


def _upload(png_bytes, encoded, owner, title: str) -> EncodeJob:
    """An upload through the services, encoded with ``encoded`` (a real codec result)."""
    from imagehost.services import jobs, uploads

    job = uploads.submit_upload(png_bytes(32, 24), owner=owner, title=title)
    jobs.claim(job.pk)
    return jobs.complete(job.pk, encoded)


def _long_token(i: int, chars: int = 31_624) -> str:
    """A well-formed token as long as a best-quality photo's (never decoded)."""
    return to_text(i.to_bytes(4, "big") + bytes(chars * 3 // 4 - 4))


# 1. the shared anonymous link ------------------------------------------------------------------
def test_the_shared_anonymous_link_shows_no_uploaders_title(client, png_bytes, real_encoded):
    """Two anonymous uploads of the same file get the token's one shared link: its page showed
    the first uploader's title to the second, and to anyone who shortened the token."""
    alice = _upload(png_bytes, real_encoded, None, "Alice's private caption")
    _upload(png_bytes, real_encoded, None, "Bob's caption")
    link = ShortLink.objects.get(owner__isnull=True)
    body = html.unescape(client.get(f"/s/{link.slug}/").content.decode())
    assert "Alice's private caption" not in body and "Bob's caption" not in body
    assert _meta(body, "og:title") == "Image on emmmbedding"
    assert "<title>Image · emmmbedding</title>" in body
    shortened = client.post("/shorten", {"token": real_encoded.token}, follow=True).content.decode()
    assert "Alice" not in html.unescape(shortened)
    # the uploader still sees their own title on their own result card
    result = html.unescape(Client().get(f"/jobs/?ids={alice.pk}").content.decode())
    assert "Alice's private caption" in result and "Bob's caption" not in result


# 2. a signed-in owner's link made for one copy ---------------------------------------------
def test_a_link_made_for_one_copy_shows_that_copys_title(client, user, png_bytes, real_encoded):
    first = _upload(png_bytes, real_encoded, user, "Private: bank statement")
    second = _upload(png_bytes, real_encoded, user, "Meme for the group chat")
    for job, title, other in ((second, "Meme for the group chat", "bank statement"),
                              (first, "Private: bank statement", "Meme")):
        link = ShortLink.objects.get(job=job)
        body = html.unescape(client.get(f"/s/{link.slug}/").content.decode())
        assert _meta(body, "og:title") == title and other not in body
    # a link the owner made without a picture (/shorten) shows their oldest copy, as before
    plain = links.get_or_create_short_link(real_encoded.token, user, slug="plain-one")
    assert _meta(client.get(f"/s/{plain.slug}/").content.decode(), "og:title") == "Private: bank statement"


def test_a_link_made_on_a_pictures_page_is_that_pictures(client, user, png_bytes, real_encoded):
    first = _upload(png_bytes, real_encoded, user, "Private: bank statement")
    second = _upload(png_bytes, real_encoded, user, "Meme for the group chat")
    client.force_login(user)
    later = (timezone.localtime() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    r = client.post(f"/p/{second.picture_id}/", {"action": "link", "slug": "meme-link"})
    assert r.status_code == 302
    r = client.post(f"/p/{second.picture_id}/", {"action": "link", "expires_at": later})
    assert r.status_code == 302
    made = ShortLink.objects.filter(owner=user).exclude(job__in=[first, second])
    assert made.count() == 0  # both recorded the picture's upload
    custom = ShortLink.objects.get(slug="meme-link")
    expiring = ShortLink.objects.get(owner=user, expires_at__isnull=False)
    assert custom.job_id == expiring.job_id == second.pk
    anonymous = Client()
    for link in (custom, expiring):
        assert _meta(anonymous.get(f"/s/{link.slug}/").content.decode(), "og:title") == "Meme for the group chat"
    # shortening again on the first copy's page gives that copy's own link, not the second's
    reserved = ShortLink.objects.get(job=first)
    page = client.post(f"/p/{first.picture_id}/", {"action": "link"}, follow=True).content.decode()
    assert f"Short link: /s/{reserved.slug}" in page


# 3. album addresses --------------------------------------------------------------------------
def test_a_new_albums_address_has_no_title_words(client, user):
    album = library.create_album(user, "Divorce evidence", Visibility.PRIVATE)
    assert "divorce" not in album.slug.lower() and "evidence" not in album.slug.lower()
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{11}", album.slug), album.slug
    library.update_album(album, title="Holiday", visibility=Visibility.UNLISTED)
    body = client.get(f"/albums/{album.slug}/").content.decode().lower()
    assert "divorce" not in body and "holiday" in body
    # albums made before keep their address
    old = Album.objects.create(owner=user, title="Trip", slug="trip-Ab3dE5gH7jK9", visibility=Visibility.UNLISTED)
    assert client.get(f"/albums/{old.slug}/").status_code == 200


# 4. page weight ------------------------------------------------------------------------------
def _t(pic, width: int | None = None, ext: str = "") -> str:
    from imagehost.views.sharing import image_by_identity_url

    return html.escape(image_by_identity_url(pic.token_sha256, ext=ext, width=width))


def test_an_album_of_best_quality_photos_is_a_light_page(client, settings, user, make_picture):
    settings.EMMM_PAGE_SIZE = 24
    album = library.create_album(user, "Trip", Visibility.UNLISTED)
    pictures = [make_picture(user, album=album, title=f"photo {i}", token=_long_token(i)) for i in range(30)]
    slugs = {p.pk: links.get_or_create_short_link(p.token, user).slug for p in pictures[:29]}  # the last has none
    r = client.get(f"/albums/{album.slug}/")
    body = r.content.decode()
    assert r.status_code == 200 and len(r.content) < 100_000, len(r.content)
    assert f'src="{_t(pictures[0], 384)}"' in body and "/i/" not in body
    assert f'href="/s/{slugs[pictures[0].pk]}/"' in body
    assert body.count("<img ") == 24 and "Page 1 of 2" in body and 'href="?page=2"' in body
    assert "An album of 30 pictures" in _meta(body, "og:description")
    assert _meta(body, "og:image") == f"http://testserver/s/{slugs[pictures[0].pk]}.png"
    second = client.get(f"/albums/{album.slug}/?page=2").content.decode()
    assert second.count("<img ") == 6 and f'src="{_t(pictures[29], 384)}"' in second and "/i/" not in second
    assert f'href="{_t(pictures[29])}"' in second  # no link: the image itself, by its identity


def test_an_albums_preview_without_a_link_is_the_image_by_its_identity(client, user, make_picture, real_token):
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    pic = make_picture(user, album=album, title="no link", token=real_token)
    body = client.get(f"/albums/{album.slug}/").content.decode()
    assert _meta(body, "og:image") == "http://testserver" + html.unescape(_t(pic, ext=".png"))
    r = client.get(html.unescape(_t(pic, ext=".png")))
    assert r.status_code == 200 and r["Content-Type"] == "image/png"


def test_a_thumbnail_by_identity_is_the_tokens_image_and_follows_the_picture(client, user, make_picture, real_token):
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    pic = make_picture(user, album=album, title="Gull", token=real_token)
    body = client.get(f"/albums/{album.slug}/").content.decode()
    src = html.unescape(re.search(r'<img src="([^"]+)"', body).group(1))
    assert src == html.unescape(_t(pic, 384))
    r = client.get(src)
    by_token = client.get(f"/i/{real_token}?w=384")
    assert r.status_code == 200 and r["Content-Type"] == "image/webp" and r.content == by_token.content
    assert r["Cache-Control"] == by_token["Cache-Control"] and r["ETag"] == by_token["ETag"]  # the same image, for ever
    assert client.get(src, HTTP_IF_NONE_MATCH=r["ETag"]).status_code == 304
    assert client.head(src).status_code == 200
    tokens.block_token(pic.token)
    assert client.get(src).status_code == 410
    assert "<img " not in client.get(f"/albums/{album.slug}/").content.decode()
    assert "<img " not in client.get("/albums/public/").content.decode()
    tokens.unblock_token(pic.token)
    library.delete_picture(pic)  # no row holds the token any more: gone
    assert client.get(src).status_code == 404


@pytest.mark.parametrize("identity", ["0" * 64, "A" * 64, "abc", "0" * 65, "%00", "0" * 64 + ".gif"])
def test_a_thumbnail_of_an_unknown_identity_is_404(client, identity):
    from imagehost.services.tokens import identity_key

    r = client.get(f"/t/{identity}?k={identity_key(identity)}")
    assert r.status_code == 404 and r["Cache-Control"] == "no-store"


def test_an_image_by_identity_needs_its_key(client, user, make_picture, real_token):
    """Anyone holding a token (a re-encode of a known image gives it) must not learn from /t/
    whether someone stored that picture here: the address works only with the site's key."""
    from imagehost.models import token_sha256

    pic = make_picture(user, token=real_token)
    good = html.unescape(_t(pic, 64))
    assert client.get(good).status_code == 200
    for bad in (f"/t/{pic.token_sha256}", f"/t/{pic.token_sha256}?w=64", f"/t/{pic.token_sha256}?k=0000000000000000&w=64"):
        assert client.get(bad).status_code == 404, bad
    other = token_sha256(real_token[:-4] + "AAAA")  # its key does not open another identity
    assert client.get(good.replace(pic.token_sha256, other)).status_code == 404


def test_an_image_by_identity_follows_its_links_expiry(client, user, make_picture, real_token):
    """A picture deleted with its links kept: /t/ answers while a live link holds the token."""
    pic = make_picture(user, token=real_token)
    link = links.get_or_create_short_link(pic.token, user, expires_at=timezone.now() + datetime.timedelta(days=1))
    src = html.unescape(_t(pic, 64))
    library.delete_picture(pic, delete_links=False)
    assert client.get(src).status_code == 200
    ShortLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert client.get(src).status_code == 404


def test_takedowns_and_search_take_an_image_address_by_identity(client, user, make_picture, real_token):
    from imagehost.services import search

    pic = make_picture(user, token=real_token)
    address = "https://example.com" + html.unescape(_t(pic, 384))
    assert tokens.takedown_identity(address) == pic.token_sha256
    assert search.token_from_text(address) == real_token


def test_thumbnails_by_identity_count_no_link_hits_and_no_slug_lookups(client, settings, user, make_picture, real_token):
    settings.EMMM_SLUG_RATE = "2/m"
    pic = make_picture(user, token=real_token)
    link = links.get_or_create_short_link(pic.token, user)
    assert all(client.get(html.unescape(_t(pic, 320))).status_code == 200 for _ in range(5))
    assert ShortLink.objects.get(pk=link.pk).hits == 0


def test_the_gallery_of_best_quality_covers_is_a_light_page(client, user, make_picture):
    covers = {}
    for i in range(24):
        album = library.create_album(user, f"Album {i}", Visibility.PUBLIC)
        covers[album.pk] = make_picture(user, album=album, token=_long_token(100 + i))
        make_picture(user, album=album, token=_long_token(200 + i))  # not the cover
    r = client.get("/albums/public/")
    body = r.content.decode()
    assert len(r.content) < 100_000, len(r.content)
    assert all(f'src="{_t(pic, 384)}"' in body for pic in covers.values())
    assert "/i/" not in body


def test_the_library_similar_cards_and_deletion_pages_show_thumbnails_by_identity(client, user, make_picture):
    pictures = [make_picture(user, title=f"p{i}", token=_long_token(300 + i)) for i in range(5)]
    client.force_login(user)
    body = client.get("/library/").content.decode()
    assert all(f'src="{_t(p, 320)}"' in body for p in pictures)
    assert "/i/" not in body and len(body) < 100_000
    body = client.post(f"/p/{pictures[0].pk}/", {"action": "delete"}).content.decode()  # the confirm page
    assert f'src="{_t(pictures[0], 320)}"' in body


def test_the_library_pager_keeps_the_search(client, settings, user, make_picture):
    settings.EMMM_PAGE_SIZE = 2
    for i in range(3):
        make_picture(user, title=f"cat & dog {i}")
    client.force_login(user)
    body = client.get("/library/", {"q": "cat & dog"}).content.decode()
    assert 'href="?q=cat%20%26%20dog&amp;page=2"' in body and "Page 1 of 2" in body


def test_reordering_an_album_works_across_its_pages(client, settings, user, make_picture):
    settings.EMMM_PAGE_SIZE = 2
    album = library.create_album(user, "Coast", Visibility.PRIVATE)
    pics = [make_picture(user, album=album, title=t) for t in ("One", "Two", "Three")]
    client.force_login(user)
    first_page = client.get(f"/albums/{album.slug}/").content.decode()
    assert first_page.count('value="up"') == 1 and first_page.count('value="down"') == 2  # "Two" goes down to page 2
    second_page = client.get(f"/albums/{album.slug}/?page=2").content.decode()
    assert second_page.count('value="up"') == 1 and second_page.count('value="down"') == 0  # "Three" up to page 1
    r = client.post(f"/albums/{album.slug}/", {"action": "up", "picture": pics[2].pk})
    assert r["Location"] == f"/albums/{album.slug}/?moved={pics[2].pk}"  # now 2 of 3: page 1
    r = client.post(f"/albums/{album.slug}/", {"action": "down", "picture": pics[2].pk})
    assert r["Location"] == f"/albums/{album.slug}/?moved={pics[2].pk}&page=2"  # back on page 2
    page = client.get(r["Location"]).content.decode()
    assert re.search(r'value="up"[^>]*autofocus', page)
    assert [p.pk for p in album.pictures.order_by("position")] == [p.pk for p in pics]


# 5. caching of signed-in pages -------------------------------------------------------------
def test_signed_in_pages_are_not_kept_by_shared_caches(client, user, make_picture, real_token):
    album = library.create_album(user, "Private stuff", Visibility.PRIVATE)
    pic = make_picture(user, album=album, title="Medical scan", token=real_token)
    slug = links.get_or_create_short_link(pic.token, user).slug
    anonymous = client.get("/albums/public/")
    assert not anonymous.has_header("Cache-Control")  # anonymous pages: unchanged
    client.force_login(user)
    for url in (f"/p/{pic.pk}/", "/library/", f"/albums/{album.slug}/", "/links/", "/albums/", "/", f"/s/{slug}/",
                "/albums/public/", "/accounts/settings/", "/api/tokens/", "/api/v1/pictures"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert r["Cache-Control"] == "private, no-cache", (url, r.get("Cache-Control"))
    # the image answers set their own, public, Cache-Control: untouched
    assert client.get(f"/i/{pic.token}")["Cache-Control"] == "public, max-age=31536000, s-maxage=86400, immutable"
    assert client.get(f"/s/{slug}")["Cache-Control"] == "public, no-cache"
    assert client.get(f"/s/{slug}/qr.svg")["Cache-Control"] == "public, max-age=3600"
    assert client.get("/s/no-such-link/").status_code == 404
    # an API client with a bearer token (no session) gets the same
    from imagehost.api.models import ApiToken

    _, raw = ApiToken.issue(user, "script")
    r = Client().get("/api/v1/pictures", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 200 and r["Cache-Control"] == "private, no-cache"


# 6. indexing -------------------------------------------------------------------------------
def test_unlisted_albums_and_share_pages_ask_not_to_be_indexed(client, user, make_picture):
    unlisted = library.create_album(user, "Family", Visibility.UNLISTED)
    public = library.create_album(user, "Coast", Visibility.PUBLIC)
    pic = make_picture(user, album=unlisted, title="Grandma")
    make_picture(user, album=public, title="Gull")
    link = links.get_or_create_short_link(pic.token, user)
    for url in (f"/albums/{unlisted.slug}/", f"/s/{link.slug}/"):
        assert _meta(client.get(url).content.decode(), "robots") == "noindex", url
    for url in (f"/albums/{public.slug}/", "/albums/public/"):
        assert _meta(client.get(url).content.decode(), "robots") is None, url


# 7. canonical addresses --------------------------------------------------------------------
def test_og_url_is_the_canonical_address_without_the_query(client, user, make_picture, real_token):
    pic = make_picture(user, title="Cat", token=real_token)
    link = links.get_or_create_short_link(pic.token, user)
    body = client.get(f"/s/{link.slug}/?fbclid=IwAR0abc&utm_source=chat").content.decode()
    assert _meta(body, "og:url") == f"http://testserver/s/{link.slug}/"
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    library.move_picture_to_album(pic, album)
    client.force_login(user)
    body = client.get(f"/albums/{album.slug}/?moved={pic.pk}&fbclid=x").content.decode()
    assert _meta(body, "og:url") == f"http://testserver/albums/{album.slug}/"


# 8. expiring links -------------------------------------------------------------------------
def test_an_expiring_links_page_leaves_out_the_permanent_token_url(client, user, make_picture, real_token):
    pic = make_picture(user, title="For one day", token=real_token)
    expiring = links.get_or_create_short_link(pic.token, user, slug="one-day",
                                              expires_at=timezone.now() + datetime.timedelta(days=1))
    body = client.get(f"/s/{expiring.slug}/").content.decode()
    assert f"/i/{real_token}" not in body and "Token URL" not in body
    assert _meta(body, "og:image") == "http://testserver/s/one-day.png"
    permanent = links.get_or_create_short_link(pic.token, user)
    body = client.get(f"/s/{permanent.slug}/").content.decode()
    assert f"http://testserver/i/{real_token}" in body and "Token URL" in body


# 9. bidi controls in titles ----------------------------------------------------------------
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_titles_lose_their_bidi_controls_wherever_they_are_saved(user, make_picture, png_bytes):
    from imagehost.services import uploads

    pic = library.update_picture(make_picture(user), title=" \u202egnp.exe\u202c ")
    assert pic.title == "gnp.exe"
    album = library.create_album(user, "\u2067Holiday\u2069", Visibility.PUBLIC)
    assert album.title == "Holiday"
    library.update_album(album, title="Tr\u202eip")
    assert album.title == "Trip"
    job = uploads.submit_upload(png_bytes(32, 24), owner=None, title=f"cat{BIDI}.png")
    assert EncodeJob.objects.get(pk=job.pk).title == "cat.png"
    assert library.clean_title("\u200fשלום\u200e") == "\u200fשלום\u200e"  # marks (no embedding) stay
    with pytest.raises(InvalidInput):
        library.create_album(user, BIDI, Visibility.PUBLIC)  # nothing left: no title


def test_a_reversed_title_stays_inside_the_title_on_the_share_page(client, user, make_picture, real_token):
    pic = library.update_picture(make_picture(user, token=real_token), title="\u202egnp.exe")
    link = links.get_or_create_short_link(pic.token, user)
    body = client.get(f"/s/{link.slug}/").content.decode()
    assert re.search(r"<title>(.*)</title>", body).group(1) == "gnp.exe · emmmbedding"
    assert not set(BIDI) & set(body)


def test_headings_of_titles_take_their_own_direction(client, user, make_picture):
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    pic = make_picture(user, album=album, title="Gull")
    link = links.get_or_create_short_link(pic.token, user)
    client.force_login(user)
    for url in (f"/s/{link.slug}/", f"/p/{pic.pk}/", f"/albums/{album.slug}/"):
        assert re.search(r'<h1[^>]* dir="auto"', client.get(url).content.decode()), url
