"""Text no database or UTF-8 response can hold, anywhere a client can send text, is a clear 4xx
that changes nothing, never a 500: a NUL (PostgreSQL refuses it; SQLite would take it, so these
run on PostgreSQL in `make test`), or in JSON a lone surrogate escape ("\\ud800")."""
from __future__ import annotations

import pytest

from imagehost.api.models import ApiToken

pytestmark = pytest.mark.django_db

NUL_VALUES = ["\x00", "pets\x00", "a\x00b"]


@pytest.mark.parametrize("value", NUL_VALUES)
def test_picture_list_album_filter(owner_client, make_album, value):
    make_album("private")
    r = owner_client.get("/api/v1/pictures", {"album": value})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("value", NUL_VALUES)
def test_sharex_download_album(client, owner, value):
    client.force_login(owner)
    r = client.post("/api/tokens/sharex.sxcu", {"album": value})
    assert r.status_code == 404
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("value", NUL_VALUES)
def test_api_token_name(client, owner, value):
    client.force_login(owner)
    r = client.post("/api/tokens/", {"name": value})
    assert r.status_code == 400 and b"Null characters are not allowed" in r.content
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("value", ["%00", "a%00b"])
def test_short_link_management_by_slug(client, owner, owner_client, value):
    """Slugs in paths arrive percent-decoded: /links/a%00b/ names no link."""
    assert owner_client.delete(f"/api/v1/links/{value}").status_code == 404
    client.force_login(owner)
    assert client.post(f"/links/{value}/", {"action": "delete"}).status_code == 404


LONE_SURROGATE_BODIES = [
    ("post", "/api/v1/albums", '{"title": "Pets", "visibility": "\\ud800"}'),
    ("patch", "/api/v1/albums/{album}", '{"visibility": "\\udfff"}'),
    ("post", "/api/v1/search", '{"scope": "\\ud800"}'),
    ("post", "/api/v1/links", '{"token": "x", "slug": "\\ud83d"}'),
]


@pytest.mark.parametrize(("method", "url", "body"), LONE_SURROGATE_BODIES)
def test_json_with_a_lone_surrogate_is_a_parse_error(owner_client, make_album, method, url, body):
    """Valid JSON, but "\\ud800" alone is no character: it can be neither stored nor echoed back
    as UTF-8 in an error message, so the body is refused as it is read."""
    url = url.format(album=make_album("private").slug)
    r = owner_client.generic(method.upper(), url, body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "parse_error"
    assert "surrogate" in r.json()["error"]["message"]


@pytest.mark.parametrize("param", ["page_size", "page"])
@pytest.mark.parametrize("value", ["²", "①", "١", "½"])
def test_pagination_numbers_are_ascii_digits(client, make_album, param, value):
    """str.isdigit() is true for "²" and "١", which int() or Django's paginator then refuse:
    a 500 (page_size) or a misleading 404 (page) until both were checked as ASCII digits."""
    album = make_album("public")
    r = client.get(f"/api/v1/albums/{album.slug}/pictures", {param: value})  # anonymous: a public album
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
    assert param in r.json()["error"]["fields"]
