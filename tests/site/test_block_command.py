"""Issue 8.9: ``manage.py block_token`` / ``unblock_token`` (the admin's takedown service)."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

import codec
from imagehost.models import BlockedToken, ShortLink
from imagehost.services import links

pytestmark = pytest.mark.django_db


def _block(target: str, *extra: str) -> None:
    call_command("block_token", *extra, "--", target)  # "--": a slug or token may begin with "-"


@pytest.mark.parametrize(
    "shape",
    ["token", "token_url", "token_url_ext", "query_url", "short_url", "short_page_url", "sha256", "SHA256", "slug"],
)
def test_block_token_takes_any_shape_and_the_site_answers_410(client, make_picture, token_pool, shape):
    token = make_picture(None, token=token_pool(0).token).token
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
        "slug": link.slug,  # the short link's slug alone (it was blocked as if it were a token: nothing)
    }[shape]
    _block(target, "--reason", "court order")
    block = BlockedToken.objects.get()
    assert (block.token_sha256, block.reason) == (codec.token_id(token), "court order")
    assert client.get(f"/i/{token}").status_code == 410
    assert client.get(f"/s/{link.slug}").status_code == 410
    _block(target)  # idempotent
    assert BlockedToken.objects.count() == 1
    call_command("unblock_token", "--", target)
    assert not BlockedToken.objects.exists()


@pytest.mark.parametrize("bad", ["not a token!", "https://example.com/s/no-such-link", "https://example.com/i/AAAAB"])
def test_block_token_refuses_what_it_cannot_read(bad):
    with pytest.raises(CommandError):
        _block(bad)
    assert not BlockedToken.objects.exists()


def test_a_token_cut_short_is_refused_not_blocked_as_something_else(client, token_pool):
    """A token URL cut when it was copied (to a multiple of 4 characters) is still base64url
    text: it was "blocked" (exit 0) and the whole token kept serving."""
    token = token_pool(0).token
    for cut in (token[: len(token) // 2 // 4 * 4], token[:-4]):
        with pytest.raises(CommandError, match="not a whole token"):
            _block(f"https://example.com/i/{cut}")
        with pytest.raises(CommandError, match="not a whole token"):
            _block(cut)
    assert not BlockedToken.objects.exists()


def test_unblock_of_an_unblocked_token_is_an_error(token_pool):
    with pytest.raises(CommandError, match="not blocked"):
        call_command("unblock_token", token_pool(1).token)


def test_a_takedown_while_the_cache_is_down_says_so_and_keeps_nothing_half_done(settings, token_pool):
    """It was a redis ConnectionError traceback (the block was rolled back: a block the serving
    cache never heard of would not reach cached look-ups)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there
    blocked, token = token_pool(1).token, token_pool(0).token
    BlockedToken.objects.bulk_create([BlockedToken(token_sha256=codec.token_id(blocked))])  # before the outage
    settings.CACHES = {"default": {"BACKEND": "emmmsite.redis_cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    with pytest.raises(CommandError, match="cache is unreachable: the takedown was not recorded"):
        call_command("block_token", token)
    with pytest.raises(CommandError, match="cache is unreachable: the block was not lifted"):
        call_command("unblock_token", blocked)
    assert list(BlockedToken.objects.values_list("token_sha256", flat=True)) == [codec.token_id(blocked)]


@pytest.mark.django_db(transaction=True)
def test_a_block_committed_is_not_reported_as_not_recorded(token_pool, monkeypatch):
    """The cache is told twice: before the commit (a failure rolls the block back) and after it
    (a look-up cached in between). The second failing raised out of the committed block, which
    was then reported as "not recorded"."""
    import redis

    from imagehost.services import cache as serving_cache

    token = token_pool(0).token
    deletes = []
    real_delete = serving_cache.cache.delete

    def second_fails(key, *args, **kwargs):
        deletes.append(key)
        if len(deletes) == 2:
            raise redis.exceptions.ConnectionError("the cache went away after the commit")
        return real_delete(key, *args, **kwargs)

    monkeypatch.setattr(serving_cache.cache, "delete", second_fails)
    _block(token)  # no CommandError: it is recorded
    assert BlockedToken.objects.filter(token_sha256=codec.token_id(token)).exists() and len(deletes) == 2


def test_a_slug_that_begins_with_a_dash_is_blocked_after_two_dashes(client, make_picture, token_pool):
    """One generated slug in 64 begins with "-", which the command line reads as an option."""
    token = make_picture(None, token=token_pool(0).token).token
    link = links.get_or_create_short_link(token)
    ShortLink.objects.filter(pk=link.pk).update(slug="-dash_slug12")
    call_command("block_token", "--", "-dash_slug12")
    assert client.get("/s/-dash_slug12").status_code == 410
    call_command("unblock_token", "--", "-dash_slug12")
    assert not BlockedToken.objects.exists()
