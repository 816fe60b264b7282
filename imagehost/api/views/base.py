"""Base classes of the API views: unknown query parameters refused, one error shape, JSON 404s."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, permissions
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request


from .. import serializers as s

MAX_DB_ID = 2**63 - 1


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Documented error answers (always 400 and 401), all in the one error shape."""
    text = {
        400: "Invalid input.",
        401: "Authentication required, or the credentials are invalid.",
        403: "Not allowed (e.g. changing someone else's album, or a session request without its CSRF token).",
        404: "Not found (also: another user's private resource).",
        409: "Conflict (e.g. the custom slug is taken).",
        410: "The image was taken down.",
        413: "Too large (file, pixel count or token length).",
        415: "Unsupported media type or not an image.",
        422: "The request repeats an Idempotency-Key with another image or other options.",
        429: "Too many requests; see the Retry-After header.",
        503: "A backend is unavailable; retry later.",
    }
    # Any request may carry bad input (e.g. an unknown query parameter) or bad credentials.
    return {c: OpenApiResponse(s.ErrorSerializer, description=text[c]) for c in sorted({400, 401, *codes})}


def user_or_none(request: Request) -> Any:
    return request.user if request.user and request.user.is_authenticated else None


class ApiView(GenericAPIView):
    """Base view: unknown query parameters are refused (400) rather than silently ignored; a
    rate limit counts only the methods that do the view's work."""

    query_params_allowed: frozenset[str] = frozenset()
    pagination_class = None  # list views set Pagination (which adds `page`, `page_size`)

    def get_throttles(self) -> list:
        """No limit for OPTIONS (a description) or a method the view does not have (a 405)."""
        method = self.request.method.lower()
        if method == "options" or method not in self.http_method_names or not hasattr(self, method):
            return []
        return super().get_throttles()

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        allowed = self.query_params_allowed
        if self.pagination_class is not None:
            pager = self.pagination_class
            allowed = allowed | {pager.page_query_param, pager.page_size_query_param}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise exceptions.ValidationError({name or "(empty)": ["Unknown query parameter."] for name in unknown})


class FormatParameterNegotiation(DefaultContentNegotiation):
    """``?format=json`` / ``yaml`` picks the rendering (the API's own views have no such parameter:
    ``URL_FORMAT_OVERRIDE`` is off, so there it is an unknown query parameter)."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None):
        return super().select_renderer(request, renderers, format_suffix or request.query_params.get("format"))


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: the OpenAPI document (YAML, or JSON by ``Accept`` or ``?format=json``); its
    errors (a 405, a ?format it does not have) in the API's JSON error shape, not as an OpenAPI document."""

    content_negotiation_class = FormatParameterNegotiation

    @extend_schema(exclude=True)  # the schema does not list itself (as drf-spectacular's own get)
    def get(self, request: Request, *args, **kwargs):
        """Only ``?format`` and ``?lang``: drf-spectacular's ``?version=`` went unchecked into the
        document and the Content-Disposition header (a newline in it was a 500)."""
        unknown = sorted(set(request.query_params) - {"format", "lang"})
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})
        return super().get(request, *args, **kwargs)

    def finalize_response(self, request: Request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class NotFoundView(GenericAPIView):
    """Any unknown path under /api/: 404 in the API's error shape (not the site's HTML page)."""

    permission_classes = [permissions.AllowAny]
    schema = None

    def initial(self, request: Request, *args, **kwargs) -> None:
        raise exceptions.NotFound()  # whatever the method, OPTIONS included
