"""One JSON error shape for every API error.

``{"error": {"status": 400, "code": "invalid", "message": "…", "fields": {"name": ["…"]}}}``
(``fields`` for validation errors, and for a service's refusal of one field). A
``ServiceError`` keeps its status, code and user-safe message.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from imagehost.services.errors import ServiceError, TokenTooLong, outage_error, refused_request_error


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            msg = _first_message(value)
            if msg:
                return msg if key in ("non_field_errors", "detail") else f"{key}: {msg}"
        return ""
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


def _codes(detail: Any) -> str:
    if isinstance(detail, dict):
        return next((_codes(v) for v in detail.values()), "invalid")
    if isinstance(detail, list):
        return _codes(detail[0]) if detail else "invalid"
    return getattr(detail, "code", None) or "invalid"


def to_api_exception(exc: Exception) -> Exception:
    """Map domain and Django exceptions onto DRF ones."""
    if isinstance(exc, ServiceError):
        api_exc = exceptions.APIException(exc.message, code=exc.code)
        # A token in a request body that is too long is a too-large body, not a too-long URI.
        api_exc.status_code = 413 if isinstance(exc, TokenTooLong) else exc.status
        return api_exc
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"detail": exc.messages})
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: DRF's status codes and headers, our body shape."""
    exc = outage_error(exc) or refused_request_error(exc) or exc
    retry_after = exc.retry_after if isinstance(exc, ServiceError) else None
    field = exc.field if isinstance(exc, ServiceError) else None
    exc = to_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django answer 500 and log it
    if retry_after:
        response["Retry-After"] = str(retry_after)
    if not response.has_header("Cache-Control"):  # a refusal is for now, not for caches to keep
        response["Cache-Control"] = "no-store"
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    error: dict[str, Any] = {"status": response.status_code}
    if isinstance(exc, exceptions.ValidationError):
        error["code"] = _codes(detail)
        error["message"] = _first_message(detail) or "Invalid input."
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        error["fields"] = {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in fields.items()}
    else:
        error["code"] = getattr(exc, "default_code", "error")
        if isinstance(detail, dict) or isinstance(detail, list):
            error["message"] = _first_message(detail)
        else:
            error["message"] = str(detail)
            error["code"] = getattr(detail, "code", None) or error["code"]
    if field:  # a service's refusal of one field: named as the serializer's refusals are
        error["fields"] = {field: [error["message"]]}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        error["retry_after"] = int(exc.wait) if exc.wait == int(exc.wait) else int(exc.wait) + 1
    response.data = {"error": error}
    return response
