"""Command line: ``python -m codec encode|decode|inspect|fetch``.

    python -m codec encode photo.jpg [--kind vae|vae-v1|vae-v2|avif] [--max-chars N] [--model M] [--max-pixels N] > photo.tok
    python -m codec decode photo.tok -o photo.png        # or the token text itself
    python -m codec inspect photo.tok                    # header fields as JSON, no model run
    python -m codec fetch taef2                          # download + verify weights (operators)

Only ``fetch`` downloads weights; ``encode`` and ``decode`` use local files only.

A TOKEN_OR_FILE argument is read from the file when such a file exists, from standard
input when it is ``-``, and is otherwise taken as the token text. ``encode -`` reads the image
from standard input, at most ``codec.limits.MAX_INPUT_BYTES`` (the largest image accepted at all,
EMMM_MAX_INPUT_PIXELS, stored uncompressed at 8 bytes a pixel, plus 16 MiB; 416,777,216 bytes, about 397 MiB, by
default). Exit status: 0 on success, 2 for bad input (an invalid token or image, input that
cannot be read, a bad option, running out of memory: a one-line message on standard error,
never a traceback), 3 when the model's weights are unavailable, 1 when the output cannot be
written. Warnings of the libraries that read images (Pillow, libtiff) are not shown.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import sys
import warnings
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_NO_MODEL = 3
EXIT_IO = 1
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def positive_int(text: str) -> int:
    """argparse type: a whole number from 1 (a one-line error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _read_input(arg: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of standard input (``arg`` ``-``) or of the file ``arg``
    (so that the caller can tell more than ``limit`` from exactly that). CodecError, a one-line
    "cannot read ..." message, when it cannot be read (a closed standard input, EIO, no
    permission)."""
    from .errors import CodecError

    name = "standard input" if arg == "-" else arg
    try:
        if arg == "-":
            if sys.stdin is None or getattr(sys.stdin, "buffer", None) is None:
                raise CodecError("cannot read standard input: it is closed")
            return _read_up_to(sys.stdin.buffer, limit + 1)
        with open(arg, "rb") as fh:
            return _read_up_to(fh, limit + 1)
    except OSError as exc:
        raise CodecError(f"cannot read {name}: {exc.strerror or exc}") from exc


def _read_up_to(stream, most: int) -> bytes:
    """Up to ``most`` bytes, read a MiB at a time (one read of ``most`` would reserve it all)."""
    out = io.BytesIO()
    while out.tell() < most:
        chunk = stream.read(min(1 << 20, most - out.tell()))
        if not chunk:
            break
        out.write(chunk)
    return out.getvalue()


def _read_token(arg: str) -> str:
    """The token text from an argument that is a token, a file holding one, or ``-``.

    Surrounding whitespace (a file's final newline) is dropped here, for people; the codec
    itself accepts only the canonical text.
    """
    from .errors import CodecError
    from .limits import MAX_TOKEN_CHARS

    limit = MAX_TOKEN_CHARS + 4096  # enough for the longest token and surrounding whitespace
    if arg == "-" or os.path.isfile(arg):  # longer input is refused as too long a token
        return _read_input(arg, limit).decode("ascii", errors="replace").strip()
    if os.path.isdir(arg):
        raise CodecError(f"{arg} is a folder, not a token or a file holding one")
    if not _BASE64URL.fullmatch(arg.strip()) and ("/" in arg or "." in arg):  # no token has either
        raise CodecError(f"no such file: {arg} (and not a token: tokens are base64url text, A-Z a-z 0-9 - _)")
    return arg.strip()


def _read_image(arg: str):
    """The image argument of ``encode``: the path as it is (Pillow reads what it needs), or the
    bytes of standard input, at most ``limits.MAX_INPUT_BYTES``."""
    from . import limits
    from .errors import InvalidImage

    if arg != "-":
        return arg
    data = _read_input("-", limits.MAX_INPUT_BYTES)
    if len(data) > limits.MAX_INPUT_BYTES:
        raise InvalidImage(f"the image on standard input is over {limits.MAX_INPUT_BYTES:,} bytes")
    return data


@contextlib.contextmanager
def _quiet():
    """No warnings, and nothing the C libraries print themselves (libtiff writes its messages
    to standard error) while the image is read: the one line on standard error is the error,
    if there is one."""
    with warnings.catch_warnings():  # the command line is one thread
        warnings.simplefilter("ignore")
        try:
            saved = os.dup(2)
        except OSError:  # standard error is closed: nothing to keep quiet
            saved = None
        if saved is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        try:
            yield
        finally:
            if saved is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m codec",
        description="emmmbedding token codec: an image in, a URL-safe token out, and back.",
        epilog="Exit status: 0 ok, 1 output not writable, 2 bad input, 3 model weights unavailable.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enc = sub.add_parser("encode", help="encode an image file into a token (printed on stdout)")
    enc.add_argument("image", metavar="IMAGE", help="image file (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF) or - for stdin")
    enc.add_argument("--kind", default="vae", choices=("vae", "vae-v1", "vae-v2", "avif"),
                     help="vae: the default VAE token; avif: the image as AVIF (sharp text, no model to decode)")
    enc.add_argument("--max-chars", type=positive_int, metavar="N", help="longest token allowed")
    enc.add_argument("--model", metavar="M", help="model name (default: $EMMM_DEFAULT_MODEL or taef2)")
    enc.add_argument("--max-pixels", type=positive_int, metavar="N", help="downscale larger images to this many pixels")

    dec = sub.add_parser("decode", help="decode a token into an image file")
    dec.add_argument("token", metavar="TOKEN_OR_FILE", help="a token, a file holding one, or - for stdin")
    dec.add_argument("-o", "--output", required=True, metavar="OUT", help="output image; format from the extension (.png, .jpg, .webp, ...)")
    dec.add_argument("--model", metavar="M", help="decode with another model of the same latent space")

    ins = sub.add_parser("inspect", help="print a token's header fields as JSON (no model run)")
    ins.add_argument("token", metavar="TOKEN_OR_FILE", help="a token, a file holding one, or - for stdin")

    fet = sub.add_parser("fetch", help="download (if missing) and verify a model's pinned weights")
    fet.add_argument("model", metavar="MODEL", nargs="?", help="model name (default: $EMMM_DEFAULT_MODEL or taef2)")
    return parser


#: Formats ``decode -o`` writes (an RGB picture): Pillow can save more, but not RGB in all of them.
OUTPUT_FORMATS = ("PNG", "JPEG", "WEBP", "AVIF", "BMP", "TIFF", "GIF", "PPM")


def _output_format(path: str) -> str:
    from PIL import Image

    from .errors import CodecError

    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise CodecError(f"cannot tell the output format from {path!r}: use an extension such as .png, .jpg or .webp")
    if fmt not in OUTPUT_FORMATS or fmt not in Image.SAVE:
        raise CodecError(f"cannot write {fmt} images: use .png, .jpg, .webp, .avif, .bmp, .tif, .gif or .ppm")
    return fmt


def _run(args: argparse.Namespace) -> int:
    import codec

    if args.command == "encode":
        source = _read_image(args.image)
        with _quiet():
            result = codec.encode(source, model=args.model, max_chars=args.max_chars, max_pixels=args.max_pixels, kind=args.kind)
        return _print(result.token)
    if args.command == "decode":
        fmt = _output_format(args.output)
        image = codec.decode(_read_token(args.token), model=args.model)
        try:
            image.save(args.output, format=fmt)
        except OSError as exc:
            print(f"python -m codec: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_IO
        return 0
    if args.command == "fetch":
        codec.fetch_model(args.model)
        return _print(f"{args.model or codec.default_model()}: weights present and verified")
    info = codec.inspect(_read_token(args.token))
    return _print(json.dumps(dataclasses.asdict(info), indent=2))


def _print(text: str) -> int:
    """Write the result on standard output: 0, or EXIT_IO with a one-line message when it
    cannot be written (closed, a full disk, a reader that went away), never a false success."""
    try:
        if sys.stdout is None:
            raise OSError("standard output is closed")
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # no second error when Python flushes at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"python -m codec: error: cannot write the result: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_IO
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .errors import CodecError, ModelUnavailable

    try:
        return _run(args)
    except ModelUnavailable as exc:  # operators get the details (__cause__) on the same line
        detail = f" ({exc.__cause__})" if isinstance(exc.__cause__, ModelUnavailable) else ""
        print(f"python -m codec: error: {exc}{detail}", file=sys.stderr)
        return EXIT_NO_MODEL
    except CodecError as exc:  # InvalidToken, InvalidImage, bad options: safe one-line messages
        print(f"python -m codec: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("python -m codec: error: out of memory (the input is too large for this machine)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
