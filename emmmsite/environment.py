"""Typed environment variables for ``settings.py`` (on top of django-environ, which parses
URLs): each reader checks its value, so a typo stops the process at start-up with
``ImproperlyConfigured`` naming the variable, instead of a 500 on every request of one kind
later (a rate of ``10/5m``) or a setting quietly wrong (``www.example.com`` after a comma and
a space). An empty variable means its default, as if it were unset."""
from __future__ import annotations

import math
import os
import re
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: A count, "/", a period. DRF reads only the period's first letter (s, m, h, d), so only words
#: that mean what it reads are taken: "3/month" would be 3 a minute.
_RATE = re.compile(r"\d+/(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)")


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _refuse(name: str, raw: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={raw!r}: expected {expected}")


def integer(name: str, default: int | None, *, minimum: int | None = None) -> int | None:
    """A whole number, at least ``minimum`` when given."""
    bound = "" if minimum is None else f" of at least {minimum}"
    return _number(name, default, int, "a whole number" + bound, lambda value: minimum is None or value >= minimum)


def number(name: str, default: float, *, above: float | None = None) -> float:
    """A finite number, greater than ``above`` when given."""
    bound = "" if above is None else f" greater than {above:g}"
    return _number(name, default, float, "a number" + bound, lambda value: above is None or value > above)


def _number(name: str, default, parse, expected: str, allowed) -> int | float | None:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise _refuse(name, raw, expected) from None
    if (isinstance(value, float) and not math.isfinite(value)) or not allowed(value):
        raise _refuse(name, raw, expected)
    return value


def boolean(name: str, default: bool) -> bool:
    """1/0, true/false, yes/no, on/off (any case); anything else is refused, not read as false."""
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _refuse(name, raw, "1 or 0 (true/false, yes/no, on/off)")


def text(name: str, default: str) -> str:
    return _raw(name) or default


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, exactly as written there."""
    raw = _raw(name)
    if raw is None:
        return default
    if raw not in choices:
        raise _refuse(name, raw, "one of " + ", ".join(choices))
    return raw


def names(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; spaces around each item are dropped, and empty items."""
    raw = _raw(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def rate(name: str, default: str) -> str:
    """A rate limit, ``<count>/<period>``: the period s, m, h or d, or sec(ond), min(ute), hour,
    day (an s at the end allowed)."""
    raw = _raw(name)
    if raw is None:
        return default
    if not _RATE.fullmatch(raw):
        raise _refuse(name, raw, "<count>/<period>, the period s, m, h or d, or second, minute, hour or day (e.g. 30/m, 5/hour)")
    return raw


def mail_server(name: str) -> dict[str, object]:
    """A mail backend as one URL (django-environ's ``email_url``: ``smtp://``, ``smtp+tls://``,
    ``smtp+ssl://user:password@host:port``, or ``consolemail://`` and its kin) as Django's mail
    settings; {} when unset. An SMTP URL it would misread (a "/" or "#" in the password moves
    the host) is refused, without quoting it."""
    import environ

    raw = _raw(name)
    if raw is None:
        return {}
    refused = ImproperlyConfigured(
        f"{name} is not an SMTP URL this site can read (smtp://, smtp+tls:// or smtp+ssl://user:password@host:port, "
        "nothing after the port): percent-encode any / # ? @ : % in the user name and password (/ is %2F)"
    )
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        config = environ.Env.email_url_config(raw)
    except Exception:  # whatever it says may quote the password
        raise refused from None
    smtp = parts.scheme.startswith("smtp")  # the others (consolemail://, filemail:///path, ...) name no server
    if smtp and (parts.path not in ("", "/") or parts.fragment or not parts.hostname):
        raise refused
    return config


def codec_variables() -> None:
    """The codec's variables, by the codec's own table (``codec.environment``; no torch loaded)."""
    from codec.environment import ConfigurationError, check

    try:
        check()
    except ConfigurationError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def below(name: str, value: float, bound_name: str, bound: float) -> None:
    """Refuse ``name`` unless it is below ``bound_name`` (a heartbeat below its stale bound)."""
    if not value < bound:
        raise ImproperlyConfigured(f"{name}={value:g} must be below {bound_name}={bound:g}")
