"""Accounts: sign-up (with an optional e-mail address for password resets) and account settings."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import ratelimits
from ..ratelimits import rate_limited
from ..services import accounts
from ..services.errors import MailUnavailable
from .forms import parse

EMAIL_HELP = "Optional. Only used to send you a link if you forget your password; we mail it a link to confirm first."


class SignupForm(UserCreationForm):
    """Username and password; the optional address is mailed a confirmation link, not saved."""

    email = forms.EmailField(
        required=False, max_length=get_user_model()._meta.get_field("email").max_length, help_text=EMAIL_HELP
    )

    field_order = ["username", "email", "password1", "password2"]

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class EmailForm(forms.Form):
    email = forms.EmailField(
        required=False, max_length=get_user_model()._meta.get_field("email").max_length,  # the column's 254
        help_text=EMAIL_HELP + " Leave empty to remove it.",
    )


class RefusedFormIs400:
    """Django's account form views answer 200 when their form is refused; the site's answer is
    400 with the form and its errors, as on every other page. GET, HEAD and POST only."""

    http_method_names = ["get", "head", "post"]

    def form_invalid(self, form: forms.Form) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


class LoginView(RefusedFormIs400, auth_views.LoginView):
    pass


class RevokesApiTokens:
    """Says how many API tokens the new password ended (``api.models.revoke_tokens_on_new_password``
    revokes them, wherever a password is set)."""

    def form_valid(self, form: forms.Form) -> HttpResponse:
        response = super().form_valid(form)
        revoked = getattr(form.user, "revoked_api_tokens", 0)
        if revoked:
            messages.info(self.request, f"{revoked} API token{'s were' if revoked > 1 else ' was'} revoked with your old "
                                        "password: create new ones for your programs on the API tokens page.")
        return response


class PasswordChangeView(RevokesApiTokens, RefusedFormIs400, auth_views.PasswordChangeView):
    pass


class PasswordResetView(RefusedFormIs400, auth_views.PasswordResetView):
    pass


class PasswordResetConfirmView(RevokesApiTokens, RefusedFormIs400, auth_views.PasswordResetConfirmView):
    """A reset link that is malformed, expired or used is refused input too: a 400 page that
    offers a new one (Django answers 200)."""

    def render_to_response(self, context: dict, **kwargs) -> HttpResponse:
        if context.get("validlink") is False:
            kwargs["status"] = 400
        return super().render_to_response(context, **kwargs)


@require_http_methods(["GET", "HEAD", "POST"])
@rate_limited("signups", methods=("POST",))
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                with transaction.atomic():
                    user = form.save()
            except IntegrityError:  # another sign-up took the name after validation
                form.add_error("username", form.instance.unique_error_message(get_user_model(), ("username",)))
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                if form.cleaned_data.get("email"):  # the account is made either way: say how to try again
                    try:
                        ratelimits.check(request, "resets")  # it mails a typed address: the limit of such mails
                        _send_confirmation(request, user, form.cleaned_data["email"])
                    except (MailUnavailable, ratelimits.RateLimited):
                        messages.error(request, "Your account is ready, but we could not send the confirmation mail "
                                                "now: add your address again in Account settings later.")
                return redirect("library")
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})


def _send_confirmation(request: HttpRequest, user, email: str) -> None:
    accounts.request_email(user, email, link_for=lambda signed: request.build_absolute_uri(reverse("confirm_email", args=[signed])))
    messages.info(request, f"We sent a link to {email}: open it to use that address for password resets.")


class ConfirmForm(forms.Form):
    confirm = forms.ChoiceField(choices=[("yes", "yes")])


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def confirm_email(request: HttpRequest, signed: str) -> HttpResponse:
    """The link mailed to a new address, for the signed-in account holder: GET shows what it
    confirms (link scanners change nothing), POST confirms."""
    confirmation = accounts.read_confirmation(signed, request.user)  # 400 page: altered, used, expired, not theirs
    if request.method == "POST":
        parse(ConfirmForm, request.POST)
        accounts.confirm_email(signed, request.user)
        messages.success(request, f"{confirmation.email} is now your e-mail address.")
        return redirect("account_settings")
    return render(request, "registration/confirm_email.html", {"confirmation": confirmation})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    """The signed-in user's e-mail address (for password resets), with links to change the password."""
    form = EmailForm(request.POST or None, initial={"email": request.user.email})
    if request.method == "POST":
        if form.is_valid():
            email = form.cleaned_data["email"]
            if not email:
                accounts.set_email(request.user, "")
                messages.success(request, "E-mail address removed.")
            elif email == request.user.email:
                messages.info(request, "That is your address already.")
            else:
                ratelimits.check(request, "resets")
                _send_confirmation(request, request.user, email)
            return redirect("account_settings")
        return render(request, "registration/account_settings.html", {"form": form}, status=400)
    return render(request, "registration/account_settings.html", {"form": form})
