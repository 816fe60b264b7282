"""Hard limits. They protect the encoder and decoder from hostile input; the numbers are
part of the token format's contract (docs/token-format.md)."""

from __future__ import annotations

import os

#: Longest token string decode()/inspect() will look at.
MAX_TOKEN_CHARS = 2_000_000
#: Largest output size a token may declare.
MAX_SIDE = 8192
MAX_OUTPUT_PIXELS = 4096 * 4096
#: Largest coded (latent-producing) image a token may declare: bounds decoder memory/time.
MAX_CODED_PIXELS = 2048 * 2048
#: Largest entropy-coder alphabet a token may declare.
MAX_ALPHABET = 4096
#: Largest input image accepted at all, checked from the file header before pixels are read.
MAX_INPUT_PIXELS = int(os.environ.get("EMMM_MAX_INPUT_PIXELS", 50_000_000))
#: Default cap for the encoded size: larger uploads are downscaled to this many pixels.
DEFAULT_MAX_PIXELS = int(os.environ.get("EMMM_MAX_PIXELS", 512 * 512))
