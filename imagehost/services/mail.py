"""Mail sent in the background, by a small pool of threads in this process: the request that
asks for it does not wait for the mail server.

For mail whose sending time would tell something: a password reset mails an address that has
an account and not one that has none, so sent during the request its time (a mail server's
round trips) said which. A process that stops gracefully waits for the mails it still holds
(the pool's threads are joined at exit, within gunicorn's ``graceful_timeout``); one killed
outright loses them, as a mail lost on the way is lost anyway.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from django.conf import settings
from django.urls import get_script_prefix, set_script_prefix

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mail")


def send_in_background(send: Callable[..., Any], *args: Any) -> None:
    """Call ``send(*args)`` (which sends one mail) on the mail threads, not waited for, or at
    once when ``EMMM_MAIL_IN_BACKGROUND`` is off; a failure is logged, never raised. The
    request's URL prefix goes with it (links in the mail are reversed on the thread)."""
    if not settings.EMMM_MAIL_IN_BACKGROUND:
        _send(send, args, None)
        return
    _pool.submit(_send, send, args, get_script_prefix())


def _send(send: Callable[..., Any], args: tuple, script_prefix: str | None) -> None:
    try:
        if script_prefix is not None:
            set_script_prefix(script_prefix)
        send(*args)
    except Exception:  # noqa: BLE001 (a thread's failure has nobody else to tell)
        log.exception("a mail could not be sent")
