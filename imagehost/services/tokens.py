"""Tokens as the site sees them: shape checks, takedowns (blocks) and header inspection."""
from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import codec
from django.conf import settings
from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac

from ..models import SLUG_RE, BlockedToken, ShortLink, token_sha256
from ..selectors import get_short_link
from . import cache as serving_cache
from .errors import BadToken, CacheUnavailable, TokenBlocked, TokenTooLong, outage_error

SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


def token_identity(token: str) -> str:
    """A token's identity (``codec.token_id``, the sha256 of its canonical bytes), length checked.

    Too long: TokenTooLong (414). Not canonical base64url (a character outside the alphabet,
    a trailing newline, non-zero unused bits in the last character): BadToken (400), so
    that one image has exactly one spelling and one identity. No decoding, no block check.
    """
    if len(token) > settings.EMMM_MAX_TOKEN_CHARS:
        raise TokenTooLong(
            f"The token has {len(token):,} characters; this site accepts up to {settings.EMMM_MAX_TOKEN_CHARS:,}."
        )
    try:
        return _recent_identity(token)
    except codec.InvalidToken as exc:
        raise BadToken(f"That is not a valid image token: {exc}.") from exc


#: A hot image's identity is not worked out again on every request (base64 decode + sha256 of
#: up to 75 KB: ~80 µs for a 12,000-character token, against ~5 µs to find it here). Tokens
#: identify themselves, so an entry can never be wrong; 64 entries hold at most 64 ×
#: EMMM_MAX_TOKEN_CHARS characters. Invalid tokens raise and are not kept.
_recent_identity = functools.lru_cache(maxsize=64)(token_sha256)


def checked_token_sha256(token: str) -> str:
    """The identity of a token the site accepts: length, canonical spelling and takedown checked.

    Order matters: too long (414), not canonical (400), blocked (410). No decoding.
    """
    sha = token_identity(token)
    if is_blocked(sha):
        raise TokenBlocked("This image has been taken down.")
    return sha


def is_blocked(sha: str) -> bool:
    """Whether the token with this sha256 has been taken down (cached; invalidated by a block/unblock)."""
    return serving_cache.is_blocked(sha)


def identity_key(identity: str) -> str:
    """The key that goes with ``/t/<identity>`` (``?k=``): a keyed digest of the identity, so
    that an address by identity works only as this site wrote it. Without it, anyone holding a
    picture's token (a re-encode of a known image gives it) could ask ``/t/`` whether someone
    stored that picture here, privately or not."""
    return salted_hmac("emmm.image-by-identity", identity).hexdigest()[:16]


def identity_key_matches(identity: str, key: str) -> bool:
    """Whether ``key`` is ``identity_key(identity)`` (compared in constant time)."""
    return constant_time_compare(identity_key(identity), key)


def split_pasted_url(text: str) -> SplitResult:
    """``urlsplit`` of a URL someone pasted; BadToken (400) for one it cannot split (a broken
    ``[IPv6]`` host raises ValueError)."""
    try:
        return urlsplit(text)
    except ValueError as exc:
        raise BadToken("That is not a token URL (/i/…) or a short link (/s/…) of this site.") from exc


def takedown_identity(target: str) -> str:
    """The identity to block for what an operator pasted: a token, a token URL, a short URL or a sha256.

    Token URLs: ``…/i/<token>[.ext][?…]`` and ``…/image?q=<token>``; short URLs:
    ``…/s/<slug>[.ext][/]`` (the link's token, live or expired), or a slug alone; an image
    address by identity, ``…/t/<sha256>[.ext][?…]`` (what a grid's "copy image address" gives). A 64-hex value
    is taken as an identity (the ``token_sha256`` shown on pictures and links). A token must be
    whole (its frame checks out). BadToken / NotFound otherwise.
    """
    value = target.strip()
    if SHA256_RE.fullmatch(value):
        return value.lower()
    url = split_pasted_url(value)
    path = unquote(url.path)
    if match := re.search(r"/i/([^/]+)$", path):
        return _whole_token_identity(match.group(1).rpartition(".")[0] or match.group(1))
    if path.endswith("/image"):
        return _whole_token_identity(parse_qs(url.query).get("q", [""])[0])
    if match := re.search(r"/s/([^/]+)/?$", path):
        return _short_link_identity(match.group(1).rpartition(".")[0] or match.group(1))
    if match := re.search(r"/t/([0-9a-f]{64})(?:\.[A-Za-z]{3,4})?$", path):  # a grid's image address
        return match.group(1)
    if SLUG_RE.fullmatch(value) and ShortLink.objects.filter(slug=value).exists():  # a slug pasted alone
        return _short_link_identity(value)
    return _whole_token_identity(value)


def _short_link_identity(slug: str) -> str:
    link = get_short_link(slug)
    if link.is_reserved:  # no token yet: nothing to block (never an empty identity)
        raise BadToken("This short link's upload is still being encoded (or failed): it has no token to block yet.")
    return link.token_sha256


def _whole_token_identity(token: str) -> str:
    """A takedown's identity of a token with its whole frame (header, payload, checksum): base64url
    text cut short when it was copied, or a slug, has an identity too, of no image at all."""
    identity = token_identity(token)
    try:
        codec.inspect(token)
    except codec.CodecError as exc:
        raise BadToken(f"That is not a whole token ({exc}): was it cut short when it was copied?") from exc
    return identity


def block_token(target: str, *, by: Any = None, reason: str = "") -> BlockedToken:
    """Block a token (see ``takedown_identity`` for what ``target`` may be). Idempotent.
    CacheUnavailable, with nothing recorded, when the serving cache cannot be told."""
    identity = takedown_identity(target)
    with _cache_must_hear_of_it("the takedown was not recorded"):
        blocked, _ = BlockedToken.objects.get_or_create(
            token_sha256=identity, defaults={"reason": reason[:300], "created_by": by if by and by.pk else None},
        )
    return blocked


def unblock_token(target: str) -> int:
    """Lift a block (``target`` as for ``block_token``); returns how many blocks were removed."""
    identity = takedown_identity(target)
    with _cache_must_hear_of_it("the block was not lifted"):
        return BlockedToken.objects.filter(token_sha256=identity).delete()[0]


@contextmanager
def _cache_must_hear_of_it(what_not_done: str) -> Iterator[None]:
    """A block's change rolls back when the serving cache cannot forget what it cached (its
    signals raise inside the transaction): said as CacheUnavailable, not a redis traceback."""
    try:
        with transaction.atomic():
            yield
    except Exception as exc:
        if isinstance(outage_error(exc), CacheUnavailable):
            raise CacheUnavailable(f"The cache is unreachable: {what_not_done}. Try again once it is back.") from exc
        raise


def inspect_token(token: str) -> codec.TokenInfo:
    """A token's header fields without running the model.

    Raises TokenTooLong / BadToken / TokenBlocked like ``rendering.render_token_image``.
    """
    checked_token_sha256(token)
    try:
        return codec.inspect(token)
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc
