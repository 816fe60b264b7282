"""A parser for uploads sent as the raw request body (``Content-Type: image/*``)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import BaseParser


class RawImageParser(BaseParser):
    """Reads the body as bytes, at most ``EMMM_MAX_UPLOAD_BYTES + 1`` of them.

    The extra byte lets ``services.validate_upload`` answer 413 without reading an
    unbounded body into memory.
    """

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        if stream is None:
            return b""
        return stream.read(settings.EMMM_MAX_UPLOAD_BYTES + 1)


class OctetStreamParser(RawImageParser):
    media_type = "application/octet-stream"
