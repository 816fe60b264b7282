"""Hard limits. They protect the encoder and decoder from hostile input; the numbers are
part of the token format's contract (docs/token-format.md)."""

from __future__ import annotations

import os

#: Longest token string decode()/inspect() will look at.
MAX_TOKEN_CHARS = 2_000_000
#: Largest output size a token may declare.
MAX_SIDE = 8192
MAX_OUTPUT_PIXELS = 4096 * 4096
#: Largest coded (latent-producing) image a token may declare. A token of a few hundred
#: characters can declare any size (constant channels cost no data), so this bounds the
#: decoder's memory and time per request: about 1 GB of activations at 1024 x 1024.
MAX_CODED_PIXELS = 1024 * 1024
#: Largest entropy-coder alphabet a token may declare.
MAX_ALPHABET = 4096
#: Largest input image accepted at all, checked from the file header before pixels are read.
MAX_INPUT_PIXELS = int(os.environ.get("EMMM_MAX_INPUT_PIXELS", 50_000_000))
#: Default cap for the encoded size: larger uploads are downscaled to this many pixels.
DEFAULT_MAX_PIXELS = int(os.environ.get("EMMM_MAX_PIXELS", 512 * 512))
