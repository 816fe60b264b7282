"""Logs that never print a whole token or a secret link: gunicorn's access log
(``logger_class`` in gunicorn.conf.py) and Django's own log lines (``RedactingFormatter``,
``LOGGING`` in settings.py: a 500's "Internal Server Error: /i/<token>" and its traceback).

Tokens are the images: a token in a log line is the picture itself (and up to 100,000
characters long). Every token in a token URL (``/i/``, ``/image?q=``) and every other run of 64
or more base64url characters in a logged value becomes
``<first 8 chars>…sha256:<first 16 hex of the token's identity>(<length>)``: enough to find
the token in the database (``Picture.token_sha256`` / ``ShortLink.token_sha256``, the sha256 of
the token's bytes, ``codec.token_id``, starts with that hex; ``manage.py block_token`` takes the
full value) without writing the image into the log.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import re

from gunicorn.glogging import Logger, SafeAtoms

TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{64,}")
#: Where the site's URLs carry a token (``/i/<token>``, ``/image?q=<token>``): redacted at any
#: length, as the API writes tokens down to the codec's floor of about 46 characters.
TOKEN_IN_URL = re.compile(r"(/i/|/image\?(?:[^\s\"'?#]*&)?q=)([A-Za-z0-9_-]+)")
PREFIX_CHARS = 8
#: Paths whose last parts are secrets that act without signing in: an upload's deletion key,
#: a password-reset link, an e-mail confirmation link. Only the path's start is kept.
SECRET_PATH = re.compile(r"(/delete/|/accounts/reset/|/accounts/email/confirm/)[^\s?\"']+")


@functools.lru_cache(maxsize=64)  # the same token is in several atoms, and popular ones in many lines
def _identity(token: str) -> str:
    """sha256 hex of the run's base64url bytes (``codec.token_id`` for a canonical token).

    Decoded here, without importing the codec (torch) into gunicorn's logger; a run that is
    not base64url at all is hashed as text.
    """
    try:
        return hashlib.sha256(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))).hexdigest()
    except (binascii.Error, ValueError):
        return hashlib.sha256(token.encode("ascii")).hexdigest()


def _shorten(token: str) -> str:
    return f"{token[:PREFIX_CHARS]}…sha256:{_identity(token)[:16]}({len(token)})"


def redact_tokens(text: str) -> str:
    """Replace every token in a token URL and every other token-like run in ``text`` by its
    prefix, hash and length, and the secret part of a deletion, password-reset or e-mail
    confirmation path by "…"."""
    text = TOKEN_IN_URL.sub(lambda m: m.group(1) + _shorten(m.group(2)), SECRET_PATH.sub(r"\1…/", text))
    return TOKEN_RUN.sub(lambda m: _shorten(m.group(0)), text)


class RedactingFormatter(logging.Formatter):
    """A log line (message and traceback alike) through ``redact_tokens``; formatted by
    ``inner`` (another handler's own formatter, e.g. Celery's) when given."""

    def __init__(self, *args, inner: logging.Formatter | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact_tokens((self.inner or super()).format(record))


def redact_handlers(logger: logging.Logger) -> None:
    """Put every handler of ``logger`` behind ``RedactingFormatter``, keeping its format."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(inner=handler.formatter or logging.Formatter()))


class ClientErrorFilter(logging.Filter):
    """A client's mistake that Django logs as an error with a traceback (a request for a host
    not in ``ALLOWED_HOSTS``: a 400) becomes one warning line: nothing in the server failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


class RedactedAtoms(SafeAtoms):
    """gunicorn's log atoms, each string redacted when the log format reads it.

    Lazily: the format reads a few of the atoms (the request line, not the path, the query or
    most headers), and redacting a 12 KB token costs about 0.1 ms (issue 8, throughput).
    """

    def __getitem__(self, key):
        value = super().__getitem__(key)
        return redact_tokens(value) if isinstance(value, str) else value


class TokenRedactingLogger(Logger):
    """gunicorn's logger with every string atom (request line, path, query, headers) redacted."""

    atoms_wrapper_class = RedactedAtoms
