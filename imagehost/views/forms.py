"""Django forms that parse the site's input: a malformed parameter is a 400, never a 500; and
the bounds a request body gets before anything reads it."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt

from ..budgets import LinkBudget
from ..middleware import NoReferrerCsrfViewMiddleware
from ..models import EncodeKind, Visibility
from ..services.errors import InvalidInput
from ..uploadhandlers import BoundedMemoryUploadHandler

MAX_DB_ID = 2**63 - 1


def parse(form_class: type[forms.Form], data: Any) -> dict[str, Any]:
    """Validate ``data`` with ``form_class``; the first error becomes InvalidInput (400), after
    the field's label (its ``label``, else the name Django makes of the field's)."""
    form = form_class(data)
    if not form.is_valid():
        field, messages = next(iter(form.errors.items()))
        prefix = "" if field == "__all__" else f"{form[field].label}: "
        raise InvalidInput(f"{prefix}{messages[0]}")
    return form.cleaned_data


def declared_length(request: HttpRequest) -> int:
    """The body length the request's ``Content-Length`` header declares (none: 0); a header that
    is not a number of bytes is InvalidInput (400)."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20):
        raise InvalidInput("The request's Content-Length header is not a number of bytes.", code="bad_content_length")
    return int(raw)


_csrf_protect = decorator_from_middleware(NoReferrerCsrfViewMiddleware)


def upload_body(*, many: bool) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """For a view whose form carries one upload (or, ``many``, up to EMMM_MAX_FILES_PER_UPLOAD):
    its multipart body is held to ``uploadhandlers.BoundedMemoryUploadHandler``'s bounds (413
    from the Content-Length before a byte is read, or as soon as a file passes them) before the
    CSRF check reads the form. That check runs here instead of in the middleware, whose reading
    of the form would meet the site's default handler, which refuses every file."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        checked = _csrf_protect(view)

        @functools.wraps(view)
        def bounded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            declared_length(request)
            files = settings.EMMM_MAX_FILES_PER_UPLOAD if many else 1
            request.upload_handlers = [BoundedMemoryUploadHandler(request, files=files)]
            return checked(request, *args, **kwargs)

        return csrf_exempt(bounded)

    return decorate


class WidthForm(forms.Form):
    """``?w=N``: a whole number from 1 to EMMM_MAX_RENDER_WIDTH."""

    w = forms.IntegerField(required=False, min_value=1)

    def clean_w(self) -> int | None:
        w = self.cleaned_data["w"]
        if w is not None and w > settings.EMMM_MAX_RENDER_WIDTH:
            raise forms.ValidationError("too wide")
        return w


def parse_width(raw: str | None) -> int | None:
    """Parse ``?w=N`` (absent or empty: None); anything but 1..EMMM_MAX_RENDER_WIDTH is InvalidInput (400)."""
    form = WidthForm({"w": raw or ""})
    if not form.is_valid():
        raise InvalidInput(f"w must be a whole number from 1 to {settings.EMMM_MAX_RENDER_WIDTH}.")
    return form.cleaned_data["w"]


class UploadForm(forms.Form):
    title = forms.CharField(required=False, strip=False)  # the service keeps the first 200 characters
    album = forms.CharField(required=False, max_length=60)
    kind = forms.ChoiceField(required=False, choices=EncodeKind.choices)
    budget = forms.ChoiceField(required=False, choices=LinkBudget.choices)

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or EncodeKind.VAE


class ShortenForm(forms.Form):
    token = forms.CharField(required=False, strip=True)
    slug = forms.CharField(required=False, strip=True, max_length=40, label="Custom short link")
    expires_at = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "iso-8601"],
        label="Expires",
        error_messages={"invalid": "Enter the expiry as a date and time (YYYY-MM-DDTHH:MM)."},
    )
    next = forms.CharField(required=False)

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value


class ConfirmForm(forms.Form):
    """A destructive POST runs only with ``confirm=yes`` (else the view shows a confirm page)."""

    confirm = forms.CharField(required=False)

    def clean_confirm(self) -> bool:
        return self.cleaned_data["confirm"] == "yes"


class PictureActionForm(ConfirmForm):
    action = forms.ChoiceField(
        choices=[("title", "title"), ("album", "album"), ("link", "link"), ("delete", "delete")],
        error_messages={"invalid_choice": "Unknown action.", "required": "Unknown action."},
    )
    title = forms.CharField(required=False, strip=False)
    album = forms.CharField(required=False, max_length=60)
    links = forms.ChoiceField(
        required=False, choices=[("delete", "delete"), ("keep", "keep")], label="Short links",
        error_messages={"invalid_choice": "Choose delete or keep."},
    )

    def clean_links(self) -> bool:
        """Whether to delete the picture's short links too (the default)."""
        return self.cleaned_data["links"] != "keep"


class LinkActionForm(ConfirmForm):
    action = forms.ChoiceField(
        choices=[("clear_expiry", "clear_expiry"), ("delete", "delete")],
        error_messages={"invalid_choice": "Unknown action.", "required": "Unknown action."},
    )
    next = forms.CharField(required=False, max_length=2000)


class PageForm(forms.Form):
    page = forms.CharField(required=False)  # Paginator.get_page reads it (anything else: page 1)


class LibrarySearchForm(PageForm):
    q = forms.CharField(required=False, strip=True, max_length=200, label="Search titles")


class ApiTokenForm(forms.Form):
    name = forms.CharField(required=False, strip=True)  # ApiToken.issue keeps the first 100 characters


class AlbumCreateForm(forms.Form):
    title = forms.CharField(required=False, strip=False)
    visibility = forms.CharField(required=False)


class AlbumActionForm(ConfirmForm):
    action = forms.ChoiceField(
        choices=[(a, a) for a in ("update", "delete", "up", "down", "reorder")],
        error_messages={"invalid_choice": "Unknown action.", "required": "Unknown action."},
    )
    title = forms.CharField(required=False, strip=False)
    visibility = forms.ChoiceField(required=False, choices=Visibility.choices)
    picture = forms.IntegerField(required=False, min_value=1, max_value=MAX_DB_ID)
    order = forms.CharField(required=False)

    def clean_order(self) -> list[int]:
        try:
            return [int(x) for x in self.cleaned_data["order"].split(",") if x.strip()]
        except ValueError:
            raise forms.ValidationError("Not a comma-separated list of picture ids.") from None

    def clean(self):
        data = super().clean()
        if data.get("action") in ("up", "down") and data.get("picture") is None:
            raise forms.ValidationError("Which picture? (picture must be a picture id)")
        return data
