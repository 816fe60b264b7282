from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


def _is_number(raw: str) -> bool:
    """ASCII digits only: str.isdigit() is also true for "²" or "١", which int() refuses."""
    return raw.isascii() and raw.isdigit()


class Pagination(PageNumberPagination):
    """``?page=N&page_size=M`` (M up to 100); the default page size is EMMM_PAGE_SIZE."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_number(self, request, paginator) -> str | int:
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not (_is_number(raw) or raw in self.last_page_strings):
            raise ValidationError({self.page_query_param: ["A page number (1, 2, ...) or 'last'."]})
        return super().get_page_number(request, paginator)

    def get_page_size(self, request) -> int:
        self.page_size = settings.EMMM_PAGE_SIZE
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (_is_number(raw) and int(raw) >= 1):
            raise ValidationError({self.page_size_query_param: ["A whole number from 1 to 100."]})
        return super().get_page_size(request)
