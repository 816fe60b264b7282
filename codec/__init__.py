"""emmmbedding's token codec: an image in, URL-safe text out, and back.

    >>> result = codec.encode(open("cat.jpg", "rb").read())
    >>> codec.decode(result.token).size == (result.width, result.height)

Public API: encode, decode, inspect, avif_bytes, token_id, probe_image, stored_size, load_model, fetch_model,
model_available, available_models,
EncodeResult, TokenInfo, ImageFacts, CodecError, InvalidToken, InvalidImage,
ModelUnavailable, ConfigurationError, DEFAULT_MAX_PIXELS. The token format is docs/token-format.md.
No Django here: the site only calls these functions.
"""

import importlib
import logging

# A library's logger: no output of its own unless the application configures logging (the
# command line prints its errors once, on one line; Django routes them to its handlers).
logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Public names and the module each comes from. Imported on first use (PEP 562), so that
#: ``import codec`` (and ``codec.environment``, which the site checks at start-up) loads no
#: torch until something is encoded or decoded.
_EXPORTS = {
    **dict.fromkeys(("KINDS", "EncodeResult", "TokenInfo", "avif_bytes", "decode", "default_model", "encode",
                     "fetch_model", "inspect", "load_model", "minimum_chars", "model_available"), ".core"),
    **dict.fromkeys(("CodecError", "InvalidImage", "InvalidToken", "ModelUnavailable"), ".errors"),
    **dict.fromkeys(("ImageFacts", "probe_image", "stored_size"), ".images"),
    "ConfigurationError": ".environment",
    "DEFAULT_MAX_PIXELS": ".limits",
    "token_id": ".token",
    "available_models": ".models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:  # a submodule (``codec.images`` after a plain ``import codec``)
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'codec' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
