"""Accounts: sign-up (with an optional e-mail address for password resets) and account settings."""
from __future__ import annotations

import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import ratelimits, selectors
from ..ratelimits import rate_limited
from ..services import accounts, mail
from ..services.errors import MailUnavailable
from .forms import parse

log = logging.getLogger(__name__)
EMAIL_HELP = "Optional. Only used to send you a link if you forget your password; we mail it a link to confirm first."
USERNAME_HELP = "Up to 150 characters: letters a–z and A–Z, digits and @ . + - _ only."


class AddressField(forms.EmailField):
    """An e-mail address that mail can be sent to (``accounts.mailable_address``), at most the
    column's 254 characters."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=get_user_model()._meta.get_field("email").max_length, **kwargs)

    def validate(self, value: str) -> None:
        super().validate(value)
        if value and not accounts.mailable_address(value):
            raise ValidationError("Enter a valid email address.", code="invalid")


class SignupForm(UserCreationForm):
    """Username and password; the optional address is mailed a confirmation link, not saved.

    New names are ASCII: "аlice" (a Cyrillic а) would show as "by alice" on public albums, and
    SQLite compares only ASCII letters without case ("Émile" and "émile" were two accounts)."""

    email = AddressField(required=False, help_text=EMAIL_HELP)

    field_order = ["username", "email", "password1", "password2"]

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)
        help_texts = {"username": USERNAME_HELP}

    def clean_username(self) -> str:
        username = super().clean_username()
        accounts.check_new_username(username, self._meta.model)
        return username


class PasswordConfirmForm(forms.Form):
    """The signed-in account's password, asked again before something that cannot be undone."""

    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError("Your password was entered incorrectly. Please enter it again.", code="password_incorrect")
        return password


class EmailForm(PasswordConfirmForm):
    """A new address (or none) for the signed-in account, with its password: a session alone
    (stolen, or a computer left open) must not move password resets to another mailbox."""

    email = AddressField(required=False, help_text=EMAIL_HELP + " Leave empty to remove it.")
    field_order = ["email", "password"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"].help_text = "Needed to change or remove the address."


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


class CappedPasswordResetForm(PasswordResetForm):
    """Django's reset form, sending in the background (``services.mail``), and nothing to an
    address past its own mail limit (whoever asks): the page, and the work the request does,
    are the same either way, so they tell nobody whether the address has an account."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None) -> None:
        send = super().send_mail  # renders and sends; logs a failure itself

        def capped_send() -> None:
            try:
                ratelimits.check_mail_to(to_email)
            except ratelimits.RateLimited:
                log.info("reset mail not sent: its address is over EMMM_MAILS_TO_ADDRESS_RATE (account %s)", context["user"].pk)
                return
            send(subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name)

        mail.send_in_background(capped_send)


class PasswordResetView(RefusedFormIs400, auth_views.PasswordResetView):
    form_class = CappedPasswordResetForm


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    """"Check your inbox", which mentions the server console only while mail is printed there."""

    def get_context_data(self, **kwargs) -> dict:
        printed = settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
        return {**super().get_context_data(**kwargs), "mail_printed": printed}


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
    ratelimits.check_mail_to(email)
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
@rate_limited("logins", methods=("POST",))  # it checks the password
def account_settings(request: HttpRequest) -> HttpResponse:
    """The signed-in user's e-mail address (for password resets), with links to change the password."""
    form = EmailForm(request.POST or None, initial={"email": request.user.email}, user=request.user)
    if request.method == "POST":
        if form.is_valid():
            email = form.cleaned_data["email"]
            if not email:
                accounts.set_email(request.user, "")
                messages.success(request, "E-mail address removed.")
            elif email.lower() == request.user.email.lower():
                messages.info(request, "That is your address already.")
            else:
                ratelimits.check(request, "resets")
                _send_confirmation(request, request.user, email)
            return redirect("account_settings")
        return render(request, "registration/account_settings.html", {"form": form}, status=400)
    return render(request, "registration/account_settings.html", {"form": form})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limited("logins", methods=("POST",))  # it checks the password
def delete_account(request: HttpRequest) -> HttpResponse:
    """``/accounts/delete/``: what the account holds, and its deletion with the password."""
    form = PasswordConfirmForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        accounts.delete_account(user)
        messages.success(request, "Your account and everything in it were deleted.")
        return redirect("upload")
    context = {"form": form, "contents": selectors.account_contents(request.user)}
    return render(request, "registration/delete_account.html", context, status=400 if form.is_bound else 200)
