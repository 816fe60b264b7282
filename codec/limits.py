"""Hard limits. They protect the encoder and decoder from hostile input; the numbers are
part of the token format's contract (docs/token-format.md)."""

from __future__ import annotations

from . import environment

#: Longest token string decode()/inspect() will look at.
MAX_TOKEN_CHARS = 2_000_000
#: Largest coded (latent-producing) image a token may declare. A token of a few hundred
#: characters can declare any size (constant channels cost no data), so this bounds the
#: decoder's memory and time per request: about 1 GB of activations at 1024 x 1024.
MAX_CODED_PIXELS = 1024 * 1024
#: Largest output size a token may declare. The encoder has always capped the image it
#: encodes (the output size) at MAX_CODED_PIXELS, so no issued token declares more.
MAX_SIDE = 8192
MAX_OUTPUT_PIXELS = MAX_CODED_PIXELS
#: Output may be at most this many times the coded size per side (tokens of version >= 2, and
#: every token the encoder writes from now on).
MAX_UPSCALE_PER_SIDE = 8
#: Version >= 2 VAE encoders code a side shorter than this at this length (two latent pixels:
#: at one the model gets colours wrong), and decoders allow that one case of a coded side
#: longer than the side shown (docs/token-format.md, "Limits").
MIN_CODED_SIDE = 16
#: Version 1's bound on output area / coded area: its rate control could shrink a 1 MP image
#: down to 8 x 8 coded pixels (it stops below one latent pixel), so 1024**2 / 8**2.
V1_MAX_UPSCALE_AREA = MAX_OUTPUT_PIXELS // 64
#: Largest entropy-coder alphabet a token may declare.
MAX_ALPHABET = 4096
#: Largest input image accepted at all, checked from the file header before pixels are read.
MAX_INPUT_PIXELS = environment.value("EMMM_MAX_INPUT_PIXELS")
#: Most bytes ``python -m codec encode -`` reads from standard input: the largest image accepted
#: at all stored uncompressed at 8 bytes a pixel (16-bit RGBA), plus 16 MiB of headers and
#: metadata (416,777,216 bytes, about 397 MiB, by default). A file named on the command line is read by Pillow as it
#: decodes, within MAX_INPUT_PIXELS.
MAX_INPUT_BYTES = 8 * MAX_INPUT_PIXELS + (16 << 20)
#: Default cap for the encoded size: larger uploads are downscaled to this many pixels.
DEFAULT_MAX_PIXELS = environment.value("EMMM_MAX_PIXELS")


def max_upscale_area(version: int) -> int:
    """Largest output area / coded area a token of this version may declare."""
    return V1_MAX_UPSCALE_AREA if version == 1 else MAX_UPSCALE_PER_SIDE**2
