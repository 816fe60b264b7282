"""Exceptions raised by the codec. Every message is safe to show to an end user."""

from __future__ import annotations


class CodecError(ValueError):
    """Base class of every error the codec raises on bad input."""


class InvalidToken(CodecError):
    """The token is not a valid emmmbedding token (or exceeds the decoder's limits)."""


class InvalidImage(CodecError):
    """The uploaded bytes are not an image this codec accepts."""


class ModelUnavailable(CodecError):
    """The model's weights cannot be found or verified."""
