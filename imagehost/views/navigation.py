"""Where to send a user back to: a ``next`` value or the Referer, only when it stays on this site."""
from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_local_path(request: HttpRequest, url: str | None) -> str | None:
    """``url`` as a path on this site (path + query), or None when it leads anywhere else.

    Accepts a relative path (``/p/1/``) or an absolute URL on this host and scheme; refuses
    ``//evil``, ``/\\evil``, other hosts and schemes, control characters and any backslash
    (browsers read ``\\`` as ``/``, so ``http://this-host/\\evil`` is ``//evil``: never an open redirect).
    """
    if not url or len(url) > 2000 or "\\" in url or any(ord(c) < 32 for c in url):
        return None
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return None
    parts = urlsplit(url)
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def back_url(request: HttpRequest) -> str | None:
    """Where the user came from: a safe ``next`` (query or form), else a same-origin Referer.
    None when the request itself cannot be read (too many query fields, a bad Host): the error
    page that asks is often about just that."""
    try:
        return _back_url(request)
    except Exception:  # noqa: BLE001 - TooManyFieldsSent, DisallowedHost, ...: simply no back link
        return None


def _back_url(request: HttpRequest) -> str | None:
    candidates = [request.GET.get("next")]
    # A form's ``next``: only from a body already parsed, or a small urlencoded one (never re-read an upload).
    if request.method == "POST" and ("_post" in request.__dict__ or request.content_type == "application/x-www-form-urlencoded"):
        try:
            candidates.append(request.POST.get("next"))
        except Exception:  # noqa: BLE001 - an unreadable or oversized body simply has no back link
            pass
    candidates.append(request.headers.get("Referer"))
    # A GET's own address would only show the same error again; a refused form's page is
    # where it was filled in (a GET of it shows the form anew).
    here = request.get_full_path() if request.method in ("GET", "HEAD") else None
    for candidate in candidates:
        path = safe_local_path(request, candidate)
        if path is not None and path != here:
            return path
    return None
