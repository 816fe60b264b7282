"""Issue 8.1: a takedown holds for every spelling of a token (identity = hash of canonical bytes)."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

import codec
from imagehost.models import ShortLink
from imagehost.services import links, tokens

pytestmark = pytest.mark.django_db

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def blockable(token_pool) -> str:
    """A real token whose last base64url character has unused low bits (length 2 or 3 mod 4)."""
    for i in range(12):
        token = token_pool(i).token
        if len(token) % 4 in (2, 3):
            return token
    pytest.fail("no pool token with unused bits in its last character")


def altered_last_char(token: str) -> str:
    """Same bytes, another text: set the lowest (unused) bit of the last character."""
    return token[:-1] + ALPHABET[ALPHABET.index(token[-1]) | 1]


def test_variant_is_another_spelling_of_the_same_bytes(blockable):
    variant = altered_last_char(blockable)
    assert variant != blockable
    import base64

    assert base64.urlsafe_b64decode(variant + "=" * (-len(variant) % 4)) == codec.token.from_text(blockable)


def test_blocked_token_variants_are_refused_on_the_site(client, blockable):
    tokens.block_token(blockable, reason="test")
    variant = altered_last_char(blockable)
    assert client.get(f"/i/{blockable}").status_code == 410
    for url in (f"/i/{variant}", f"/i/{variant}.png", f"/i/{blockable}%0A", f"/i/{blockable}%0A.png",
                f"/image?q={blockable}%0A", f"/image?q={variant}"):
        assert client.get(url).status_code == 400, url
    r = client.post("/shorten", {"token": variant})
    assert r.status_code == 400
    assert not ShortLink.objects.exists()


def test_blocked_token_variants_are_refused_by_the_api(blockable):
    api = APIClient()
    tokens.block_token(blockable, reason="test")
    variant = altered_last_char(blockable)
    for endpoint in ("/api/v1/decode", "/api/v1/links", "/api/v1/inspect"):
        assert api.post(endpoint, {"token": variant}, format="json").status_code == 400, endpoint
        # JSON fields are trimmed (the serializers' rule): what is left is the blocked token
        assert api.post(endpoint, {"token": blockable + "\n"}, format="json").status_code == 410, endpoint
    assert api.post("/api/v1/decode", {"token": blockable}, format="json").status_code == 410
    assert api.post("/api/v1/links", {"token": blockable}, format="json").status_code == 410
    assert not ShortLink.objects.exists()


def test_identity_is_the_canonical_bytes_hash(blockable, make_picture):
    pic = make_picture(None, token=blockable)
    assert pic.token_sha256 == codec.token_id(blockable)
    link = links.get_or_create_short_link(blockable)
    assert link.token_sha256 == codec.token_id(blockable)
    # blocking by the identity shown on a row takes the token down
    tokens.block_token(pic.token_sha256)
    with pytest.raises(tokens.TokenBlocked):
        tokens.checked_token_sha256(blockable)


def test_migration_moves_rows_and_blocks_to_the_canonical_identity(blockable, make_picture, capsys):
    import hashlib
    import importlib

    from django.apps import apps

    from imagehost.models import BlockedToken, Picture

    migration = importlib.import_module("imagehost.migrations.0006_token_identity_canonical_bytes")
    text_hash = lambda t: hashlib.sha256(t.encode()).hexdigest()  # noqa: E731 - the old identity
    variant = altered_last_char(blockable)
    pic = make_picture(None, token=blockable)
    link = links.get_or_create_short_link(blockable)
    other = make_picture(None)
    # the state before the migration: text hashes, a link made from a second spelling, blocks
    Picture.objects.filter(pk=pic.pk).update(token_sha256=text_hash(blockable))
    Picture.objects.filter(pk=other.pk).update(token_sha256=text_hash(other.token))
    ShortLink.objects.filter(pk=link.pk).delete()
    owner_link = ShortLink.objects.create(slug="variant-link", token=blockable, owner=pic.owner)
    ShortLink.objects.filter(pk=owner_link.pk).update(token=variant, token_sha256=text_hash(variant))
    BlockedToken.objects.create(token_sha256=text_hash(variant))
    BlockedToken.objects.create(token_sha256="f" * 64)  # a token never stored here

    migration.to_canonical_identity(apps, None)

    assert Picture.objects.get(pk=pic.pk).token_sha256 == codec.token_id(blockable)
    assert Picture.objects.get(pk=other.pk).token_sha256 == codec.token_id(other.token)
    moved = ShortLink.objects.get(slug="variant-link")
    assert (moved.token, moved.token_sha256) == (blockable, codec.token_id(blockable))
    assert set(BlockedToken.objects.values_list("token_sha256", flat=True)) == {codec.token_id(blockable), "f" * 64}
    assert "1 block(s) matched no stored token" in capsys.readouterr().out
    with pytest.raises(tokens.TokenBlocked):
        tokens.checked_token_sha256(blockable)
