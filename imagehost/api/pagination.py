from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


def _in_range(raw: str, low: int, high: int) -> bool:
    """Whether ``raw`` is a whole number from ``low`` to ``high``: ASCII digits only (str.isdigit()
    is also true for "²" or "١", which int() refuses), and no more of them than ``high`` has
    (int() refuses over 4,300 digits)."""
    digits = raw.lstrip("0") or "0"
    return raw.isascii() and raw.isdigit() and len(digits) <= len(str(high)) and low <= int(digits) <= high


#: No list has more pages than this; a larger number is refused like a malformed one.
MAX_PAGE = 10**9


class Pagination(PageNumberPagination):
    """``?page=N&page_size=M`` (N from 1 or ``last``, M from 1 to 100, else 400; a page past the
    end is a 404); the default page size is EMMM_PAGE_SIZE."""

    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_number(self, request, paginator) -> str | int:
        raw = request.query_params.get(self.page_query_param)
        if raw is None or raw in self.last_page_strings:
            return super().get_page_number(request, paginator)
        if not _in_range(raw, 1, MAX_PAGE):
            raise ValidationError({self.page_query_param: ["A page number (1, 2, ...) or 'last'."]})
        return int(raw.lstrip("0"))

    def get_page_size(self, request) -> int:
        self.page_size = settings.EMMM_PAGE_SIZE
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _in_range(raw, 1, self.max_page_size):
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw.lstrip("0"))

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.page_query_param: {"minimum": 1, "maximum": MAX_PAGE}, self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size}}
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
