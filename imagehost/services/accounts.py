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

import smtplib
from dataclasses import dataclass
from typing import Any, Callable

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.utils.crypto import constant_time_compare, salted_hmac

from .errors import InvalidInput, MailUnavailable

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
