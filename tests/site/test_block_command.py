"""Issue 8.9: ``manage.py block_token`` / ``unblock_token`` (the admin's takedown service)."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

import codec
from imagehost.models import BlockedToken
from imagehost.services import links

pytestmark = pytest.mark.django_db


def _block(target: str, *extra: str) -> None:
    call_command("block_token", target, *extra)


@pytest.mark.parametrize(
    "shape",
    ["token", "token_url", "token_url_ext", "query_url", "short_url", "short_page_url", "sha256", "SHA256"],
)
def test_block_token_takes_any_shape_and_the_site_answers_410(client, make_picture, shape):
    token = make_picture(None).token
    link = links.get_or_create_short_link(token)
    target = {
        "token": token,
        "token_url": f"https://example.com/i/{token}",
        "token_url_ext": f"http://testserver/i/{token}.png?w=64",
        "query_url": f"https://example.com/image?q={token}&f=png",
        "short_url": f"https://example.com/s/{link.slug}",
        "short_page_url": f"https://example.com/s/{link.slug}.png/",
        "sha256": codec.token_id(token),
        "SHA256": codec.token_id(token).upper(),
    }[shape]
    _block(target, "--reason", "court order")
    block = BlockedToken.objects.get()
    assert (block.token_sha256, block.reason) == (codec.token_id(token), "court order")
    assert client.get(f"/i/{token}").status_code == 410
    assert client.get(f"/s/{link.slug}").status_code == 410
    _block(target)  # idempotent
    assert BlockedToken.objects.count() == 1
    call_command("unblock_token", target)
    assert not BlockedToken.objects.exists()


@pytest.mark.parametrize("bad", ["not a token!", "https://example.com/s/no-such-link", "https://example.com/i/AAAAB"])
def test_block_token_refuses_what_it_cannot_read(bad):
    with pytest.raises(CommandError):
        _block(bad)
    assert not BlockedToken.objects.exists()


def test_unblock_of_an_unblocked_token_is_an_error(make_picture):
    with pytest.raises(CommandError, match="not blocked"):
        call_command("unblock_token", make_picture(None).token)
