"""CSRF that works with ``Referrer-Policy: no-referrer``; the Content-Security-Policy header;
headers of answers every client may share (``SharedAnswerMiddleware``) and of those for a
signed-in user, which none may share (``SignedInAnswerMiddleware``).

Every page sends ``no-referrer`` so token URLs never leak. Browsers then send form posts
with ``Origin: null`` and no ``Referer``, which Django's Origin/Referer checks refuse.
For exactly that case the check falls back to the CSRF token (with the SameSite=Lax
CSRF cookie), which a cross-site page cannot read. Any other Origin is checked as usual.
"""
from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.utils.functional import SimpleLazyObject

from .views.errors import error_response
from django.utils.cache import cc_delim_re
from django.middleware.csrf import CsrfViewMiddleware


class NoReferrerCsrfViewMiddleware(CsrfViewMiddleware):
    def process_view(self, request, callback, callback_args, callback_kwargs):
        if request.META.get("HTTP_ORIGIN") == "null" and "HTTP_REFERER" not in request.META:
            del request.META["HTTP_ORIGIN"]
            request._emmm_null_origin = True
        return super().process_view(request, callback, callback_args, callback_kwargs)

    def _check_referer(self, request):
        if getattr(request, "_emmm_null_origin", False):
            return  # no origin information at all: the token check (still done) decides
        super()._check_referer(request)


class NoReferrerCSRFCheck(NoReferrerCsrfViewMiddleware):
    """The same check for DRF's session authentication (the upload page's script posts to the API)."""

    def _reject(self, request, reason):
        return reason


class ContentSecurityPolicyMiddleware:
    """Send ``settings.EMMM_CSP`` as Content-Security-Policy unless a view set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.EMMM_CSP:
            response.headers.setdefault("Content-Security-Policy", settings.EMMM_CSP)
        return response


class SharedAnswerMiddleware:
    """Listed before SessionMiddleware and CommonMiddleware, so it sees their headers:

    - an answer marked ``Cache-Control: public`` (an image) is the same for every client, so it
      does not vary on Cookie (SessionMiddleware adds that when a rate limit's key read the
      session; a shared cache would then keep one copy per visitor's cookies) and sets no
      cookie (SessionMiddleware deletes a stale session cookie: a shared cache could replay
      that to everyone who loads the image);
    - a 304 sends no Content-Length (CommonMiddleware's 0 is not the 200's length: RFC 9110
      §8.6)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 304:
            del response["Content-Length"]
        if "public" in {d.strip().lower() for d in cc_delim_re.split(response.get("Cache-Control", ""))}:
            vary = [v for v in cc_delim_re.split(response.get("Vary", "")) if v and v.strip().lower() != "cookie"]
            if vary:
                response["Vary"] = ", ".join(vary)
            else:
                del response["Vary"]
            response.cookies.clear()
        return response


#: What an answer for a signed-in user says when its view said nothing: only the browser may
#: keep it, and it asks again before showing it (a shared cache never holds a private title, a
#: token, an owner's links).
SIGNED_IN_CACHE_CONTROL = "private, no-cache"


def _signed_in(request: HttpRequest) -> bool:
    """Whether the answer is for a signed-in user: one of the session (read only when the request
    has a session cookie: reading it for a visitor would add ``Vary: Cookie``) or of the API's
    bearer token (DRF sets ``request.user`` to that user)."""
    user = getattr(request, "user", None)
    if user is None:
        return False
    if isinstance(user, SimpleLazyObject) and settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False  # the session's user, and no session: nobody is signed in
    return bool(user.is_authenticated)


class SignedInAnswerMiddleware:
    """Listed after AuthenticationMiddleware: an answer for a signed-in user whose view set no
    ``Cache-Control`` (pages: the library, a picture's page, a private album, the links; the
    API's answers) gets ``SIGNED_IN_CACHE_CONTROL``. Answers that set their own are left as
    they are: the images of ``/i/`` and ``/s/`` (public, the same for everyone), ``no-store``
    pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control") and _signed_in(request):
            response["Cache-Control"] = SIGNED_IN_CACHE_CONTROL
        return response


class HttpsOnlyMiddleware:
    """``SECURE_SSL_REDIRECT`` beyond SecurityMiddleware's 301 for GET and HEAD: the API over
    plain HTTP is a 403 naming its https address (a client set up with ``http://`` that followed
    a redirect would send its bearer token in clear on every call, unnoticed); another method
    gets a 308, which keeps a form's POST a POST (a 301 turns it into a GET). The
    ``SECURE_REDIRECT_EXEMPT`` paths (``/healthz``) are left alone."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.exempt = [re.compile(pattern) for pattern in settings.SECURE_REDIRECT_EXEMPT]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.SECURE_SSL_REDIRECT or request.is_secure() or any(p.search(request.path.lstrip("/")) for p in self.exempt):
            return self.get_response(request)
        https = f"https://{settings.SECURE_SSL_HOST or request.get_host()}{request.get_full_path()}"
        if request.path.startswith("/api/"):
            return error_response(request, 403, f"This API answers over HTTPS only: {https}", code="https_required")
        if request.method not in ("GET", "HEAD"):
            response = HttpResponsePermanentRedirect(https)
            response.status_code = 308
            return response
        return self.get_response(request)


class LengthRequiredMiddleware:
    """A request body sent without a Content-Length (``Transfer-Encoding: chunked``) is a 411:
    Django reads such a body as empty, so an upload was "The file is empty." and a JSON body a
    missing field. Every client library sends a Content-Length for a body it has in hand."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("HTTP_TRANSFER_ENCODING") and not request.META.get("CONTENT_LENGTH"):
            return error_response(request, 411, "Send the request body with a Content-Length header: a body sent in "
                                  "chunks (Transfer-Encoding: chunked) is not read.", code="length_required")
        return self.get_response(request)
