"""Issue 11 (part B): share tools, OpenGraph from titles, QR codes, galleries, the upload page's copy."""
from __future__ import annotations

import html
import re

import pytest

from imagehost.services import library, links
from imagehost.models import Visibility
from imagehost.views.sharing import embed_snippets

pytestmark = pytest.mark.django_db


def _meta(body: str, prop: str) -> str | None:
    m = re.search(rf'<meta (?:property|name)="{re.escape(prop)}" content="([^"]*)"', body)
    return html.unescape(m.group(1)) if m else None


def test_share_page_takes_og_title_from_the_pictures_title(client, user, make_picture, real_token):
    pic = make_picture(user, title='Sunset at "Pemaquid" <3', token=real_token)
    link = links.get_or_create_short_link(pic.token, user)
    body = client.get(f"/s/{link.slug}/").content.decode()
    assert _meta(body, "og:title") == 'Sunset at "Pemaquid" <3'
    assert "<3" not in body.replace("&lt;3", "")  # escaped in the page
    assert "A 64×48 picture" in _meta(body, "og:description")
    assert _meta(body, "og:image") == f"http://testserver/s/{link.slug}.png"
    assert "<title>Sunset at &quot;Pemaquid&quot; &lt;3 · emmmbedding</title>" in body


def test_share_page_of_an_anonymous_link_without_a_picture_has_a_generic_title(client, real_token):
    link = links.get_or_create_short_link(real_token, None)
    body = client.get(f"/s/{link.slug}/").content.decode()
    assert _meta(body, "og:title") == "Image on emmmbedding"


def test_share_page_offers_snippets_and_a_qr_code(client, user, make_picture):
    pic = make_picture(user, title="Cat")
    link = links.get_or_create_short_link(pic.token, user)
    body = html.unescape(client.get(f"/s/{link.slug}/").content.decode())
    page, image = f"http://testserver/s/{link.slug}/", f"http://testserver/s/{link.slug}"
    assert f"[![Cat]({image})]({page})" in body
    assert f'<a href="{page}"><img src="{image}" alt="Cat"></a>' in body
    assert f"[url={page}][img]{image}[/img][/url]" in body
    assert f'src="/s/{link.slug}/qr.svg"' in body


def test_qr_code_is_an_svg_of_the_short_link(client, real_token):
    segno = pytest.importorskip("segno")
    link = links.get_or_create_short_link(real_token, None)
    r = client.get(f"/s/{link.slug}/qr.svg")
    assert r.status_code == 200 and r["Content-Type"] == "image/svg+xml"
    svg = r.content.decode()
    assert svg.startswith("<?xml") or svg.startswith("<svg")
    assert f"<title>http://testserver/s/{link.slug}</title>" in svg
    # The same matrix segno makes for the short link: the code encodes exactly that URL.
    expected = segno.make(f"http://testserver/s/{link.slug}", error="m")
    assert f'width="{(expected.symbol_size(scale=6, border=2))[0]}"' in svg


def test_qr_code_of_an_unknown_link_is_a_404(client):
    assert client.get("/s/no-such-link/qr.svg").status_code == 404


def test_snippets_escape_what_they_embed():
    md, html_snippet, bb = embed_snippets("http://h/s/a/", "http://h/s/a", 'a]"<b>')
    assert md.text == '[![a\\]"<b>](http://h/s/a)](http://h/s/a/)'
    assert html_snippet.text == '<a href="http://h/s/a/"><img src="http://h/s/a" alt="a]&quot;&lt;b&gt;"></a>'
    assert bb.text == "[url=http://h/s/a/][img]http://h/s/a[/img][/url]"


def test_picture_page_shows_share_tools_of_its_link(client, user, make_picture):
    pic = make_picture(user, title="Boat")
    link = links.get_or_create_short_link(pic.token, user)
    client.force_login(user)
    body = client.get(f"/p/{pic.pk}/").content.decode()
    assert f'src="/s/{link.slug}/qr.svg"' in body and "BBCode" in body


def test_album_grid_opens_each_pictures_share_page(client, user, other_user, make_picture):
    album = library.create_album(user, "Coast", Visibility.UNLISTED)
    linked = make_picture(user, album=album, title="Linked")
    unlinked = make_picture(user, album=album, title="Unlinked")
    link = links.get_or_create_short_link(linked.token, user)
    client.force_login(other_user)
    body = client.get(f"/albums/{album.slug}/").content.decode()
    assert f'href="/s/{link.slug}/"' in body
    assert f'href="/t/{unlinked.token_sha256}?k=' in body  # no link: the image (by its identity: a short address)
    assert _meta(body, "og:title") == "Coast"
    assert _meta(body, "og:image") == f"http://testserver/s/{link.slug}.png"
    assert "An album of 2 pictures by alice" in _meta(body, "og:description")
    assert "Upload here" not in body  # not the owner's


def test_empty_album_offers_its_owner_upload_here(client, user):
    album = library.create_album(user, "Empty", Visibility.PRIVATE)
    client.force_login(user)
    body = client.get(f"/albums/{album.slug}/").content.decode()
    assert f'href="/?album={album.slug}"' in body and "Upload here" in body
    page = client.get(f"/?album={album.slug}").content.decode()
    assert f'<option value="{album.slug}" selected>' in page


def test_public_albums_is_a_grid_of_covers(client, user, make_picture):
    full = library.create_album(user, "Full", Visibility.PUBLIC)
    library.create_album(user, "Nothing yet", Visibility.PUBLIC)
    library.create_album(user, "Hidden", Visibility.UNLISTED)
    first = make_picture(user, album=full, title="first")
    make_picture(user, album=full, title="second")
    body = client.get("/albums/public/").content.decode()
    assert f'src="/t/{first.token_sha256}?k=' in body and "&amp;w=384" in body
    assert "2 pictures" in body and "empty" in body and "Hidden" not in body


def test_upload_page_explains_budgets_and_sizes(client):
    body = html.unescape(client.get("/").content.decode())
    for value in ("chat", "proxy", "best"):
        assert f'name="budget" value="{value}"' in body
    assert 'value="best" checked' in body  # the short link fits anywhere; budgets cost detail
    assert "Fits chat apps (~4,000 characters)" in body and "Fits proxies (~8,000 characters)" in body
    assert "a 768×512 photo at 627×418, a 4000×3000 photo at 591×443" in body
    assert "Your recent uploads" in body


def test_api_docs_link_back_to_the_site(client):
    body = client.get("/api/docs/").content.decode()
    assert '<a class="brand" href="/">' in body


def test_pages_have_no_inline_scripts_or_styles(client, user, make_picture):
    album = library.create_album(user, "Coast", Visibility.PUBLIC)
    pic = make_picture(user, album=album)
    link = links.get_or_create_short_link(pic.token, user)
    client.force_login(user)
    for url in ("/", f"/s/{link.slug}/", f"/albums/{album.slug}/", "/albums/public/", f"/p/{pic.pk}/"):
        body = client.get(url).content.decode()
        assert " style=" not in body and "<style" not in body, url
        for tag in re.findall(r"<script[^>]*>", body):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)


def test_no_js_result_page_says_place_in_line_stored_size_and_quality(client, make_picture, real_token):
    from imagehost.models import EncodeJob, EncodeKind, JobStatus

    queued = EncodeJob.objects.create(status=JobStatus.QUEUED, source=b"x")
    assert "next in line" in client.get(f"/jobs/{queued.pk}/").content.decode()
    pic = make_picture(None, token=real_token)
    done = EncodeJob.objects.create(status=JobStatus.DONE, picture=pic)
    body = html.unescape(client.get(f"/jobs/{done.pk}/").content.decode())
    assert f"Stored at {pic.width}×{pic.height}" in body and "2026-32-01" in body
    avif = EncodeJob.objects.create(status=JobStatus.DONE, kind=EncodeKind.AVIF, picture=make_picture(None, title="b"))
    assert "2026-32-01" not in client.get(f"/jobs/{avif.pk}/").content.decode()


def test_the_gallery_pages_through_every_public_album(client, user, settings):
    """It showed the newest 100 and no pager: older public albums could not be reached."""
    settings.EMMM_PAGE_SIZE = 4
    for i in range(6):
        library.create_album(user, f"Album {i}", Visibility.PUBLIC)
    first = client.get("/albums/public/").content.decode()
    assert first.count('class="caption" dir="auto">Album') == 4 and 'href="?page=2"' in first and "Page 1 of 2" in first
    second = client.get("/albums/public/?page=2").content.decode()
    assert second.count('class="caption" dir="auto">Album') == 2 and "Album 0" in second and 'href="?page=1"' in second
    assert client.get("/albums/public/?page=zz").status_code == 200  # any other page: the first
