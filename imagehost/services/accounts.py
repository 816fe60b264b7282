"""Account details a user manages themselves: the e-mail address that password resets use.

An address becomes the account's only when a link mailed to it is opened and confirmed
(``request_email`` → ``confirm_email``), so nobody can send another person reset mails by
naming their address. The link is signed (user and address, ``django.core.signing``) and
expires after ``EMMM_EMAIL_CONFIRM_MAX_AGE_S``; nothing is stored until it is confirmed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail

from .errors import InvalidInput

_SALT = "imagehost.accounts.email-confirmation"


@dataclass(frozen=True)
class EmailConfirmation:
    """What a confirmation link says: whose account, which address."""

    user: Any
    email: str


def set_email(user: Any, email: str) -> Any:
    """Set (or, with "", remove) the user's e-mail address; ``email`` is already validated."""
    user.email = (email or "").strip()
    user.save(update_fields=["email"])
    return user


def request_email(user: Any, email: str, *, link_for: Callable[[str], str]) -> None:
    """Mail ``email`` a link that makes it ``user``'s address; ``link_for(signed)`` is its URL."""
    email = email.strip()
    signed = signing.dumps({"user": user.pk, "email": email}, salt=_SALT, compress=True)
    send_mail(
        "Confirm your e-mail address on emmmbedding",
        f"Someone (we hope you) asked to use this address for the emmmbedding account "
        f"“{user.get_username()}”: password reset links would be sent here.\n\n"
        f"To confirm, open this link and press the button:\n{link_for(signed)}\n\n"
        f"If it was not you, ignore this mail: nothing changes.\n",
        None,
        [email],
    )


def read_confirmation(signed: str) -> EmailConfirmation:
    """The account and address a confirmation link names; InvalidInput if the link was altered,
    has expired or names an account that no longer exists."""
    refused = InvalidInput("This confirmation link is invalid or has expired. Enter the address again to get a new one.")
    try:
        data = signing.loads(signed, salt=_SALT, max_age=settings.EMMM_EMAIL_CONFIRM_MAX_AGE_S)
        user = get_user_model().objects.filter(pk=data["user"], is_active=True).first()
        email = str(data["email"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise refused from None
    if user is None:
        raise refused
    return EmailConfirmation(user, email)


def confirm_email(signed: str) -> EmailConfirmation:
    """Make the address a confirmation link names its account's (see ``read_confirmation``)."""
    confirmation = read_confirmation(signed)
    set_email(confirmation.user, confirmation.email)
    return confirmation
