"""Request parsing: JSON that is text, raw request bodies (``Content-Type: image/*``) and bounded
multipart files."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser

from imagehost.services.errors import UploadTooLarge


class TextJSONParser(JSONParser):
    """JSON whose strings are all Unicode text.

    A lone surrogate escape (``"\\ud800"``) is valid JSON but no character: it could be neither
    stored nor echoed back (in an error message) as UTF-8, so such a body is a 400 here.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
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


class BoundedMemoryUploadHandler(MemoryFileUploadHandler):
    """Keeps multipart uploads in memory up to ``EMMM_MAX_UPLOAD_BYTES`` (413 beyond).

    Django's MemoryFileUploadHandler silently skips files over FILE_UPLOAD_MAX_MEMORY_SIZE
    (2.5 MB by default); with no other handler the file would vanish from the request.
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None) -> None:
        self.activated = True

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if start + len(raw_data) > settings.EMMM_MAX_UPLOAD_BYTES:
            raise UploadTooLarge(
                f"The file is over the limit of {settings.EMMM_MAX_UPLOAD_BYTES:,} bytes."
            )
        return super().receive_data_chunk(raw_data, start)
