"""A NUL character in any text a client sends is a clear 4xx and changes nothing, never a 500:
PostgreSQL refuses NUL in text, so such a value must not reach a query (SQLite would take it)."""
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
