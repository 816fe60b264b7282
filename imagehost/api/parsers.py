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


#: Room in a multipart body for its boundaries, part headers and small form fields.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class BoundedMemoryUploadHandler(MemoryFileUploadHandler):
    """Keeps a multipart request's files in memory, ``EMMM_MAX_UPLOAD_BYTES`` in all (413 beyond):
    the API takes one image per request, so every file part counts, whatever its field name
    (a per-file limit let a body carry up to Django's 100 files of that size).

    Django's MemoryFileUploadHandler silently skips files over FILE_UPLOAD_MAX_MEMORY_SIZE
    (2.5 MB by default); with no other handler the file would vanish from the request.
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None) -> None:
        if content_length and content_length > settings.EMMM_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES:
            raise self._too_large()  # said by Content-Length: refused before reading the body
        self.activated = True
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > settings.EMMM_MAX_UPLOAD_BYTES:
            raise self._too_large()
        return super().receive_data_chunk(raw_data, start)

    @staticmethod
    def _too_large() -> UploadTooLarge:
        return UploadTooLarge(f"The file is over the limit of {settings.EMMM_MAX_UPLOAD_BYTES:,} bytes.")
