"""How much of a multipart request body the site reads and keeps: Django's upload handlers.

Every request gets ``NoFilesUploadHandler`` (``FILE_UPLOAD_HANDLERS``): a form that takes no
files refuses a file part as soon as its header arrives, before a byte of it is kept. A view
that takes files swaps in ``BoundedMemoryUploadHandler`` before anything reads the body (the
API's upload views in ``initialize_request``, the site's in ``views.forms.upload_body``).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, MemoryFileUploadHandler

from .services.errors import UploadTooLarge

#: Room in a multipart body for its boundaries, part headers and small form fields.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class FilesNotAccepted(TooManyFilesSent):
    """A file part in a request whose form takes none (more than zero files).

    A ``TooManyFilesSent`` so that Django treats it as the refusal of a body it is (the form is
    marked unreadable, the answer is a 400 through ``handler400`` or the API's handler).
    """


class NoFilesUploadHandler(FileUploadHandler):
    """The default handler: refuses the first file part (a part with an empty filename, an
    unchosen file input, never reaches it)."""

    def new_file(self, field_name, *args, **kwargs) -> None:
        raise FilesNotAccepted(f"A file was sent in field {field_name!r}")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:  # pragma: no cover - new_file refused it
        return None

    def file_complete(self, file_size: int) -> None:  # pragma: no cover - new_file refused it
        return None


class BoundedMemoryUploadHandler(MemoryFileUploadHandler):
    """Keeps a multipart request's files in memory: each up to ``EMMM_MAX_UPLOAD_BYTES`` and
    ``files`` times that in all, whatever their field names (413 beyond, from the
    Content-Length before a byte is read, else as soon as a file passes its bound).

    Django's MemoryFileUploadHandler silently skips files over FILE_UPLOAD_MAX_MEMORY_SIZE
    (2.5 MB by default); this one never does.
    """

    def __init__(self, request=None, *, files: int = 1) -> None:
        super().__init__(request)
        self.files = files

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None) -> None:
        if content_length and content_length > self._total_bound() + MULTIPART_OVERHEAD_BYTES:
            raise self._too_large(one_file=False)
        self.activated = True
        self.received = 0

    def new_file(self, *args, **kwargs) -> None:
        self.file_received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        self.file_received += len(raw_data)
        if self.file_received > settings.EMMM_MAX_UPLOAD_BYTES:
            raise self._too_large(one_file=True)
        if self.received > self._total_bound():
            raise self._too_large(one_file=False)
        return super().receive_data_chunk(raw_data, start)

    def _total_bound(self) -> int:
        return settings.EMMM_MAX_UPLOAD_BYTES * self.files

    def _too_large(self, *, one_file: bool) -> UploadTooLarge:
        limit = settings.EMMM_MAX_UPLOAD_BYTES
        if self.files == 1:
            return UploadTooLarge(f"The file is over the limit of {limit:,} bytes.")
        if one_file:
            return UploadTooLarge(f"A file is over the limit of {limit:,} bytes.")
        return UploadTooLarge(f"The upload is over the limit of {self.files} files of {limit:,} bytes each.")
