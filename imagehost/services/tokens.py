"""Tokens as the site sees them: shape checks, takedowns (blocks) and header inspection."""
from __future__ import annotations

import re
from typing import Any

import codec
from django.conf import settings

from ..models import BlockedToken, token_sha256
from . import cache as serving_cache
from .errors import BadToken, TokenBlocked, TokenTooLong

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


def checked_token_sha256(token: str) -> str:
    """The sha256 of a token the site accepts: its length, alphabet and takedown checked.

    Order matters: too long (414), bad characters (400), blocked (410). No decoding.
    """
    if len(token) > settings.EMMM_MAX_TOKEN_CHARS:
        raise TokenTooLong(
            f"The token has {len(token):,} characters; this site accepts up to {settings.EMMM_MAX_TOKEN_CHARS:,}."
        )
    if not token or not TOKEN_RE.match(token):
        raise BadToken("That is not a valid image token (only A-Z, a-z, 0-9, '-' and '_' are allowed).")
    sha = token_sha256(token)
    if is_blocked(sha):
        raise TokenBlocked("This image has been taken down.")
    return sha


def is_blocked(sha: str) -> bool:
    """Whether the token with this sha256 has been taken down (cached; invalidated by a block/unblock)."""
    return serving_cache.is_blocked(sha)


def _sha_of(token_or_sha256: str) -> str:
    value = token_or_sha256.strip()
    return value.lower() if SHA256_RE.fullmatch(value) else token_sha256(value)


def block_token(token_or_sha256: str, *, by: Any = None, reason: str = "") -> BlockedToken:
    """Block a token (given as the token itself or its 64-hex sha256). Idempotent."""
    blocked, _ = BlockedToken.objects.get_or_create(
        token_sha256=_sha_of(token_or_sha256),
        defaults={"reason": reason[:300], "created_by": by if by and by.pk else None},
    )
    return blocked


def unblock_token(token_or_sha256: str) -> int:
    """Lift a block; returns how many blocks were removed."""
    return BlockedToken.objects.filter(token_sha256=_sha_of(token_or_sha256)).delete()[0]


def inspect_token(token: str) -> codec.TokenInfo:
    """A token's header fields without running the model.

    Raises TokenTooLong / BadToken / TokenBlocked like ``rendering.render_token_image``.
    """
    checked_token_sha256(token)
    try:
        return codec.inspect(token)
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc
