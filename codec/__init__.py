"""emmmbedding's token codec: an image in, URL-safe text out, and back.

    >>> result = codec.encode(open("cat.jpg", "rb").read())
    >>> codec.decode(result.token).size == (result.width, result.height)

Public API: encode, decode, inspect, avif_bytes, token_id, probe_image, stored_size, load_model, fetch_model,
model_available, available_models,
EncodeResult, TokenInfo, ImageFacts, CodecError, InvalidToken, InvalidImage,
ModelUnavailable, DEFAULT_MAX_PIXELS. The token format is docs/token-format.md.
No Django here: the site only calls these functions.
"""

from .core import (
    KINDS, EncodeResult, TokenInfo, avif_bytes, decode, default_model, encode, fetch_model, inspect, load_model, minimum_chars,
    model_available,
)
from .errors import CodecError, InvalidImage, InvalidToken, ModelUnavailable
from .images import ImageFacts, probe_image, stored_size
from .limits import DEFAULT_MAX_PIXELS
from .token import token_id
from .models import available_models

__all__ = [
    "DEFAULT_MAX_PIXELS", "KINDS", "CodecError", "EncodeResult", "ImageFacts", "InvalidImage",
    "InvalidToken", "ModelUnavailable", "TokenInfo", "available_models", "avif_bytes", "decode",
    "default_model", "encode", "fetch_model", "inspect", "load_model", "minimum_chars", "model_available",
    "probe_image", "stored_size", "token_id",
]  # fmt: skip
