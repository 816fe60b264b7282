"""Account details a user manages themselves: the e-mail address that password resets use.

An address becomes the account's only when a link mailed to it is opened and confirmed by
the signed-in account holder (``request_email`` → ``confirm_email``), so nobody can send
another person reset mails by naming their address, and whoever owns a mistyped address
cannot take the account with its link. The link is signed (``django.core.signing``: user,
address and a digest of the account's address and password when it was mailed, so it stops
working once either changes, after its own use too, unless both change back) and expires after ``EMMM_EMAIL_CONFIRM_MAX_AGE_S``;
nothing is stored until it is confirmed.
"""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from typing import Any, Callable

from django.conf import settings
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac

from ..models import PictureEmbedding
from . import similar
from .errors import InvalidInput, MailUnavailable

_SALT = "imagehost.accounts.email-confirmation"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailConfirmation:
    """What a confirmation link says: whose account, which address."""

    user: Any
    email: str


def check_new_username(username: str, user_model: Any, *, other_than: Any = None) -> None:
    """The rule for a new or changed user name, wherever it is set (sign-up, the admin): ASCII
    letters, digits and ``@ . + - _`` ("аlice" with a Cyrillic а would show as "by alice"), and
    no other account's name in any case (SQLite compares only ASCII letters without case).
    ValidationError otherwise; ``other_than`` is the account being renamed."""
    ASCIIUsernameValidator()(username)
    if user_model.objects.filter(username__iexact=username).exclude(pk=getattr(other_than, "pk", None)).exists():
        raise ValidationError("A user with that username already exists.", code="unique")


def mailable_address(email: str) -> bool:
    """Whether mail can be addressed to ``email``: its domain has an IDNA form (a Unicode label
    of up to 63 characters, which Django's EmailField takes, can be longer once encoded)."""
    domain = email.rpartition("@")[2]
    try:
        domain.encode("idna")
    except UnicodeError:
        return False
    return True


def set_email(user: Any, email: str) -> Any:
    """Set (or, with "", remove) the user's e-mail address; ``email`` is already validated.
    The address it replaces is told (a notice, not a question: the change is made)."""
    previous = user.email
    user.email = (email or "").strip()
    user.save(update_fields=["email"])
    if previous and previous.lower() != user.email.lower():
        now = f"changed to {user.email}" if user.email else "removed: password reset links can no longer be sent anywhere"
        _notify(user, previous, "Your e-mail address on emmmbedding changed",
                f"The e-mail address of the emmmbedding account “{user.get_username()}” was {now}.")
    return user


def notify_password_changed(user: Any) -> None:
    """Tell the account's address that its password changed (from any page, the admin or
    ``manage.py changepassword``)."""
    if user.email:
        _notify(user, user.email, "Your password on emmmbedding changed",
                f"The password of the emmmbedding account “{user.get_username()}” was changed, and its "
                "other sessions and API tokens ended.")


def delete_account(user: Any) -> None:
    """Delete the account and everything in it: pictures, albums, short links (which then answer
    404), upload jobs, API tokens. Its address, if any, is told once the deletion is committed.
    Tokens already shared still decode: a token is the picture."""
    address, name = user.email, user.get_username()
    with transaction.atomic(), similar.removals_logged_in_bulk(PictureEmbedding.objects.filter(picture__owner=user)):
        user.delete()  # every row of the account goes with it (on_delete=CASCADE)
        if address:
            body = (f"The emmmbedding account “{name}” was deleted, with its pictures, albums, short links and "
                    "API tokens. Links made of a token (not short links) still show their picture: the token is the picture.\n")
            transaction.on_commit(lambda: _send_quietly("Your emmmbedding account was deleted", body, address, name))


def _notify(user: Any, address: str, subject: str, what: str) -> None:
    """A notice after the change is made: a mail server that is down loses it (logged), it
    does not undo the change."""
    body = f"{what}\n\nIf it was you, there is nothing to do. If not, reset your password now (“Forgot your password?” on the sign-in page) and check your account settings.\n"
    _send_quietly(subject, body, address, user.pk)


def _send_quietly(subject: str, body: str, address: str, account: Any) -> None:
    try:
        send_mail(subject, body, None, [address])
    except (smtplib.SMTPException, OSError, ValueError):
        log.warning("could not send the notice %r to the account %s", subject, account, exc_info=True)


def _account_state(user: Any) -> str:
    """A digest of what a confirmation link must find unchanged: the address and the password."""
    return salted_hmac(_SALT, f"{user.pk}:{user.email}:{user.password}", algorithm="sha256").hexdigest()[:20]


def request_email(user: Any, email: str, *, link_for: Callable[[str], str]) -> None:
    """Mail ``email`` a link that makes it ``user``'s address; ``link_for(signed)`` is its URL.
    MailUnavailable (503) when the mail server refuses or does not answer."""
    email = email.strip()
    signed = signing.dumps({"user": user.pk, "email": email, "state": _account_state(user)}, salt=_SALT, compress=True)
    try:
        _send_confirmation_mail(user, email, link_for(signed))
    except (smtplib.SMTPException, OSError) as exc:
        raise MailUnavailable() from exc


def _send_confirmation_mail(user: Any, email: str, link: str) -> None:
    send_mail(
        "Confirm your e-mail address on emmmbedding",
        f"Someone (we hope you) asked to use this address for the emmmbedding account "
        f"“{user.get_username()}”: password reset links would be sent here.\n\n"
        f"To confirm, open this link and press the button:\n{link}\n\n"
        f"If it was not you, ignore this mail: nothing changes.\n",
        None,
        [email],
    )


def read_confirmation(signed: str, user: Any) -> EmailConfirmation:
    """The address a confirmation link offers ``user`` (the signed-in account holder).

    InvalidInput if the link was altered, has expired, was used or overtaken (the account's
    address or password changed since it was mailed), or is another account's.
    """
    refused = InvalidInput("This confirmation link is invalid or has expired. Enter the address again to get a new one.")
    try:
        data = signing.loads(signed, salt=_SALT, max_age=settings.EMMM_EMAIL_CONFIRM_MAX_AGE_S)
        linked_user, email, state = data["user"], str(data["email"]), str(data["state"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise refused from None
    if linked_user != user.pk:
        raise InvalidInput("This confirmation link is for another account: sign in as the account that asked for it.")
    if not constant_time_compare(state, _account_state(user)):
        raise refused
    return EmailConfirmation(user, email)


def confirm_email(signed: str, user: Any) -> EmailConfirmation:
    """Make the address a confirmation link offers ``user`` theirs (see ``read_confirmation``)."""
    confirmation = read_confirmation(signed, user)
    set_email(user, confirmation.email)
    return confirmation
