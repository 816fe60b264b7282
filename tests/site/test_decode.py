"""GET /i/<token>, /image?q=, formats, widths, caching headers, limits, takedowns."""
from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from PIL import Image

from imagehost.services import links, rendering, tokens
from imagehost.models import token_sha256

pytestmark = pytest.mark.django_db


def test_token_url_decodes_to_webp_with_cache_headers(client, token_pool):
    res = token_pool(0)
    r = client.get(f"/i/{res.token}")
    assert r.status_code == 200
    assert r["Content-Type"] == "image/webp"
    assert r["Cache-Control"] == "public, max-age=31536000, s-maxage=86400, immutable"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["ETag"].startswith('"')
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "WEBP" and img.size == (res.width, res.height)


@pytest.mark.parametrize(
    "ext,ctype,pil", [("png", "image/png", "PNG"), ("jpg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP"),
                      ("avif", "image/avif", "AVIF")]
)
def test_formats_by_extension(client, real_token, ext, ctype, pil):
    r = client.get(f"/i/{real_token}.{ext}")
    assert r.status_code == 200
    assert r["Content-Type"] == ctype
    assert Image.open(io.BytesIO(r.content)).format == pil


def test_width_shrinks_and_never_upscales(client, token_pool):
    res = token_pool(0)
    r = client.get(f"/i/{res.token}.png?w=32")
    assert Image.open(io.BytesIO(r.content)).size == (32, round(res.height * 32 / res.width))
    r = client.get(f"/i/{res.token}.png?w=4000")
    assert Image.open(io.BytesIO(r.content)).size == (res.width, res.height)
    for bad in ("0", "-1", "abc", "4097"):
        assert client.get(f"/i/{res.token}?w={bad}").status_code == 400


def test_query_link_shape_answers_the_same(client, real_token):
    a = client.get(f"/i/{real_token}")
    b = client.get("/image", {"q": real_token})
    assert b.status_code == 200 and b.content == a.content and b["ETag"] == a["ETag"]


def test_if_none_match_gives_304_and_result_is_cached(client, real_token):
    first = client.get(f"/i/{real_token}.png?w=48")
    key = f"emmm:img:v1:{token_sha256(real_token)}:png:48"
    assert cache.get(key)[0] == first.content
    r = client.get(f"/i/{real_token}.png?w=48", HTTP_IF_NONE_MATCH=first["ETag"])
    assert r.status_code == 304 and r.content == b""
    assert r["ETag"] == first["ETag"]
    again = rendering.render_token_image(real_token, "png", 48)
    assert again.from_cache and again.content == first.content


@pytest.mark.parametrize("header", ["{etag}", "W/{etag}", "*", '"other", W/{etag}', ' "other" ,{etag} '])
def test_if_none_match_compares_weakly_and_star_matches(client, real_token, header):
    """RFC 9110: If-None-Match uses the weak comparison (a proxy that compresses sends W/),
    and "*" matches any existing representation."""
    etag = client.get(f"/i/{real_token}")["ETag"]
    r = client.get(f"/i/{real_token}", HTTP_IF_NONE_MATCH=header.format(etag=etag))
    assert r.status_code == 304 and r["ETag"] == etag


def test_if_none_match_with_other_tags_sends_the_image(client, real_token):
    etag = client.get(f"/i/{real_token}")["ETag"]
    for header in ('"other"', f"W/{etag[:-2]}x\"", f"{etag[:-1]}", ""):
        assert client.get(f"/i/{real_token}", HTTP_IF_NONE_MATCH=header).status_code == 200


FUTURE = "Sat, 01 Jan 2100 00:00:00 GMT"


def test_date_preconditions_are_ignored_for_images_without_a_date(client, real_token):
    """RFC 9110 §13.1.3-4: with no Last-Modified, If-Unmodified-Since and If-Modified-Since are
    ignored (any valid If-Unmodified-Since date made every image a 412)."""
    slug = links.get_or_create_short_link(real_token).slug
    for url in (f"/i/{real_token}", f"/image?q={real_token}", f"/s/{slug}"):
        assert client.get(url, HTTP_IF_UNMODIFIED_SINCE=FUTURE).status_code == 200, url
        assert client.get(url, HTTP_IF_MODIFIED_SINCE=FUTURE).status_code == 200, url
    etag = client.get(f"/i/{real_token}")["ETag"]
    r = client.get(f"/i/{real_token}", HTTP_IF_NONE_MATCH=etag, HTTP_IF_UNMODIFIED_SINCE=FUTURE)
    assert r.status_code == 304


def test_if_match_compares_strongly_and_a_412_is_never_cached(client, real_token):
    """A 412 carried the image's "public, max-age=31536000, immutable": a shared cache that
    forwards If-Match on a miss would have kept it for a year for everyone."""
    etag = client.get(f"/i/{real_token}")["ETag"]
    for header in (etag, "*", f'"other", {etag}'):
        assert client.get(f"/i/{real_token}", HTTP_IF_MATCH=header).status_code == 200, header
    for header in ('"nope"', f"W/{etag}"):
        r = client.get(f"/i/{real_token}", HTTP_IF_MATCH=header)
        assert r.status_code == 412 and r["Cache-Control"] == "no-store", header
        assert "If-Match" in r.content.decode()


def test_star_matches_only_a_token_that_has_an_image(client):
    """If-None-Match: * answered 304 for a well-formed token with an unreadable header (a 400)."""
    from tests.conftest import FAKE_TOKEN

    assert client.get(f"/i/{FAKE_TOKEN}").status_code == 400
    assert client.get(f"/i/{FAKE_TOKEN}", HTTP_IF_NONE_MATCH="*").status_code == 400
    assert client.get("/image", {"q": FAKE_TOKEN}, HTTP_IF_NONE_MATCH="*").status_code == 400


def test_public_images_do_not_vary_on_cookie(client, user, real_token):
    """The rate limit's key reads the session, so every image answer said Vary: Cookie and a
    shared cache kept one copy per visitor's cookies; the image is the same for everyone."""
    slug = links.get_or_create_short_link(real_token).slug
    for signed_in in (False, True):
        if signed_in:
            client.force_login(user)
        for url in (f"/i/{real_token}", f"/image?q={real_token}", f"/s/{slug}", f"/s/{slug}/qr.svg"):
            r = client.get(url)
            assert r.status_code == 200 and "public" in r["Cache-Control"], url
            assert "cookie" not in r.get("Vary", "").lower(), (url, r["Vary"])
    assert "Cookie" in client.get(f"/s/{slug}/")["Vary"]  # a page that shows who is signed in still does


def test_public_images_set_no_cookie(client, real_token):
    """A stale session cookie made the image answer delete it (Set-Cookie on a year-long public
    answer: a shared cache could replay it and sign out everyone who loads that image)."""
    client.cookies["sessionid"] = "stale-session-key"
    r = client.get(f"/i/{real_token}")
    assert r.status_code == 200 and "public" in r["Cache-Control"]
    assert not r.cookies and not r.has_header("Set-Cookie")


def test_not_modified_carries_no_content_length(client, real_token):
    """RFC 9110 §8.6: a 304 must not send a Content-Length other than the 200's (it sent 0)."""
    first = client.get(f"/i/{real_token}")
    r = client.get(f"/i/{real_token}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert r.status_code == 304 and not r.has_header("Content-Length")


def test_shared_caches_ask_again_within_a_day(client, real_token):
    """A takedown answers 410 at once here; a shared cache (a CDN) keeps a 200 only a day before
    it revalidates (a cheap 304 while the image is up), a browser's own cache a year."""
    r = client.get(f"/i/{real_token}")
    assert r["Cache-Control"] == "public, max-age=31536000, s-maxage=86400, immutable"


def test_bad_tokens_are_400(client):
    assert client.get("/i/not*a*token").status_code == 400
    r = client.get("/i/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert r.status_code == 400
    assert b"Error 400" in r.content
    assert client.get("/image", {"q": ""}).status_code == 400
    assert client.get("/image", {"q": "%%%"}).status_code == 400


def test_unknown_format_is_404(client, real_token):
    assert client.get(f"/i/{real_token}.gifx").status_code == 404


def test_unknown_format_in_the_query_is_400(client, real_token):
    """A path extension names a resource (404 when there is none); a query parameter is input."""
    r = client.get("/image", {"q": real_token, "f": "gif"})
    assert r.status_code == 400 and "use webp, png, jpg or avif" in r.content.decode()
    assert client.get("/image", {"q": real_token, "f": "JPEG"}).status_code == 200


def test_token_length_limit_at_n_and_n_plus_1(client, settings, real_token):
    settings.EMMM_MAX_TOKEN_CHARS = len(real_token)
    assert client.get(f"/i/{real_token}").status_code == 200
    settings.EMMM_MAX_TOKEN_CHARS = len(real_token) - 1
    r = client.get(f"/i/{real_token}")
    assert r.status_code == 414
    assert client.get("/image", {"q": real_token}).status_code == 414


def test_blocked_token_is_410_before_decoding(client, real_token, admin_user):
    etag = client.get(f"/i/{real_token}")["ETag"]
    tokens.block_token(real_token, by=admin_user, reason="test")
    for url in (f"/i/{real_token}", f"/i/{real_token}.png", f"/image?q={real_token}"):
        assert client.get(url).status_code == 410
    assert client.get(f"/i/{real_token}", HTTP_IF_NONE_MATCH=etag).status_code == 410
    assert tokens.unblock_token(token_sha256(real_token)) == 1
    assert client.get(f"/i/{real_token}").status_code == 200


def test_decode_rate_limit_at_n_and_n_plus_1(client, settings, real_token):
    rendering.render_token_image(real_token)  # warm the cache: the requests are fast
    settings.EMMM_DECODE_RATE = "3/h"  # hour windows: no window boundary between the requests
    codes = [client.get(f"/i/{real_token}").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_error_answers_vary_on_accept(client):
    """The same URL answers an error page or the JSON error shape depending on Accept, so a
    shared cache must key on it (a 404 or 410 is cacheable by default)."""
    page = client.get("/i/not*a*token", HTTP_ACCEPT="text/html")
    data = client.get("/i/not*a*token", HTTP_ACCEPT="application/json")
    assert page["Content-Type"].startswith("text/html") and data.json()["error"]["status"] == 400
    for r in (page, data, client.get("/s/no-such-link")):
        assert "Accept" in [v.strip() for v in r["Vary"].split(",")]
