"""Request parsing: JSON that is text and raw request bodies (``Content-Type: image/*``); multipart
files are bounded by ``imagehost.uploadhandlers``."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser


class TextJSONParser(JSONParser):
    """JSON whose strings are all Unicode text.

    A lone surrogate escape (``"\\ud800"``) is valid JSON but no character: it could be neither
    stored nor echoed back (in an error message) as UTF-8, so such a body is a 400 here.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # [[[[…]]]]: Python's json gives up past its recursion limit
            raise ParseError("JSON parse error - nested too deeply.") from None
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - a string holds a lone surrogate (\\ud800-\\udfff), which is not text.") from None
        return data


class RawImageParser(BaseParser):
    """Reads the body as bytes, at most ``EMMM_MAX_UPLOAD_BYTES + 1`` of them.

    The extra byte lets ``uploads.validate_upload`` answer 413 without reading an
    unbounded body into memory.
    """

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        if stream is None:
            return b""
        return stream.read(settings.EMMM_MAX_UPLOAD_BYTES + 1)


class OctetStreamParser(RawImageParser):
    media_type = "application/octet-stream"
