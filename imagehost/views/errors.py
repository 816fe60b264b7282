"""Error pages (HTML, or the API's JSON error shape for script clients) and the middleware
that turns a ``ServiceError`` or a rate limit raised by a view into one."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from ..ratelimits import RateLimited
from ..services.errors import ServiceError, outage_error, refused_request_error
from .navigation import back_url


#: The HTML pages under /api/ (``imagehost/api/urls.py``); every other /api/ path answers JSON.
API_HTML_PAGES = ("/api/docs/", "/api/tokens/")


def wants_json(request: HttpRequest) -> bool:
    """JSON for the REST API's paths (even for errors Django raises before DRF: a bad Host
    header, a crash) and for script clients (``Accept: application/json``) anywhere."""
    api = request.path.startswith("/api/") and not request.path.startswith(API_HTML_PAGES)
    return api or "application/json" in request.headers.get("Accept", "")


def shown_beside_the_form(refused: ServiceError, request: HttpRequest) -> bool:
    """Whether a form's refusal goes back on its own page, beside the form with what was typed
    (a 4xx for a person), rather than to the error page or JSON (a busy server, a script)."""
    return refused.status < 500 and not wants_json(request)


def error_response(
    request: HttpRequest, status: int, message: str, *, code: str = "error", headers: dict | None = None
) -> HttpResponse:
    """A clear error page with the given status (JSON ``{"error": {...}}`` for script clients)."""
    if wants_json(request):
        body = {"error": {"status": status, "code": code, "message": message}}
        response: HttpResponse = JsonResponse(body, status=status)
    else:
        context = {"status": status, "message": message, "back_url": back_url(request)}
        response = render(request, "imagehost/error.html", context, status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    if not response.has_header("Cache-Control"):  # 404, 410, 414 are cacheable by default (RFC 9111 4.2.2)
        response["Cache-Control"] = "no-store"
    patch_vary_headers(response, ["Accept"])  # its shape depends on Accept: shared caches must key on it
    return response


def error_400(request, exception=None):
    """Django's refusals of a request (SuspiciousOperation), saying which where it can."""
    refusal = refused_request_error(exception)
    if refusal is not None:
        return error_response(request, refusal.status, refusal.message, code=refusal.code)
    return error_response(request, 400, "Bad request.", code="invalid")


def error_403(request, exception=None):
    return error_response(request, 403, "You are not allowed to do that.", code="permission_denied")


def csrf_failure(request, reason: str = ""):
    """A form refused by the CSRF check (``CSRF_FAILURE_VIEW``): what happened and what to do."""
    if reason == REASON_NO_CSRF_COOKIE:
        message = "Your browser did not send this site's cookie with the form. Allow cookies for this site, reload the page and send it again."
    else:
        message = ("This form had expired: you signed in or out in another tab, or the page was open a long time. "
                   "Go back, reload the page and send it again.")  # fmt: skip
    return error_response(request, 403, message, code="csrf_failed")


def error_404(request, exception=None):
    return error_response(request, 404, "Not found.", code="not_found")


def error_500(request):
    return error_response(request, 500, "Something went wrong on our side.")


class ServiceErrorMiddleware:
    """Turn a ServiceError (or RateLimited, or a dependency outage: ``outage_error``) raised by a
    site view into its clear 4xx/5xx page; and a bare 405 (``require_POST`` and kin) into one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and not response.content:  # Django's bare HttpResponseNotAllowed
            allow = response.get("Allow", "")
            message = f"This address does not take {request.method} requests" + (f" (only {allow})." if allow else ".")
            response = error_response(request, 405, message, code="method_not_allowed", headers={"Allow": allow})
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, RateLimited):
            return error_response(
                request,
                429,
                f"Too many requests. Please try again in {exception.retry_after} seconds.",
                code="throttled",
                headers={"Retry-After": str(exception.retry_after)},
            )
        exception = outage_error(exception) or exception
        if isinstance(exception, ServiceError):
            headers = {"Retry-After": str(exception.retry_after)} if exception.retry_after else None
            return error_response(request, exception.status, exception.message, code=exception.code, headers=headers)
        return None
