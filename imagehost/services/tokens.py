"""Tokens as the site sees them: shape checks, takedowns (blocks) and header inspection."""
from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import codec
from django.conf import settings

from ..models import BlockedToken, token_sha256
from ..selectors import get_short_link
from . import cache as serving_cache
from .errors import BadToken, TokenBlocked, TokenTooLong

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
    ``…/s/<slug>[.ext][/]`` (the link's token, live or expired). A 64-hex value is taken as an
    identity (the ``token_sha256`` shown on pictures and links). BadToken / NotFound otherwise.
    """
    value = target.strip()
    if SHA256_RE.fullmatch(value):
        return value.lower()
    url = split_pasted_url(value)
    path = unquote(url.path)
    if match := re.search(r"/i/([^/]+)$", path):
        return token_identity(match.group(1).rpartition(".")[0] or match.group(1))
    if path.endswith("/image"):
        return token_identity(parse_qs(url.query).get("q", [""])[0])
    if match := re.search(r"/s/([^/]+)/?$", path):
        link = get_short_link(match.group(1).rpartition(".")[0] or match.group(1))
        if link.is_reserved:  # no token yet: nothing to block (never an empty identity)
            raise BadToken("This short link's upload is still being encoded (or failed): it has no token to block yet.")
        return link.token_sha256
    return token_identity(value)


def block_token(target: str, *, by: Any = None, reason: str = "") -> BlockedToken:
    """Block a token (see ``takedown_identity`` for what ``target`` may be). Idempotent."""
    blocked, _ = BlockedToken.objects.get_or_create(
        token_sha256=takedown_identity(target),
        defaults={"reason": reason[:300], "created_by": by if by and by.pk else None},
    )
    return blocked


def unblock_token(target: str) -> int:
    """Lift a block (``target`` as for ``block_token``); returns how many blocks were removed."""
    return BlockedToken.objects.filter(token_sha256=takedown_identity(target)).delete()[0]


def inspect_token(token: str) -> codec.TokenInfo:
    """A token's header fields without running the model.

    Raises TokenTooLong / BadToken / TokenBlocked like ``rendering.render_token_image``.
    """
    checked_token_sha256(token)
    try:
        return codec.inspect(token)
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc
