"""System checks of this site's own settings (``manage.py check --deploy``)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

#: Mail backends that send nothing: the console one prints each mail, working links included.
UNSENT_MAIL_BACKENDS = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
)


@register(Tags.security, deploy=True)
def mail_is_sent(app_configs, **kwargs) -> list[Warning]:
    """Password resets and e-mail confirmations must reach people, not the server's log."""
    if settings.DEBUG or settings.EMAIL_BACKEND not in UNSENT_MAIL_BACKENDS:
        return []
    return [Warning(
        f"DJANGO_EMAIL_BACKEND is {settings.EMAIL_BACKEND}: password-reset and e-mail confirmation mails are "
        "not sent, and the console backend writes their working links into the log.",
        hint="Set DJANGO_EMAIL_URL (smtp+tls://user:password@host:587), or DJANGO_EMAIL_BACKEND to "
        "django.core.mail.backends.dummy.EmailBackend to send none.",
        id="emmm.W001",
    )]


@register(Tags.security, deploy=True)
def clients_are_told_apart(app_configs, **kwargs) -> list[Warning]:
    """Behind a proxy every request comes from its address: rate limits must key on what it saw."""
    if not getattr(settings, "BEHIND_TLS_PROXY", False) or settings.REST_FRAMEWORK.get("NUM_PROXIES"):
        return []
    return [Warning(
        "DJANGO_BEHIND_TLS_PROXY is on but EMMM_NUM_PROXIES is 0: every client has the proxy's address, so one "
        "client's sign-in, reset and upload limits lock out everyone.",
        hint="Set EMMM_NUM_PROXIES to the number of proxies in front of the site (1 for one nginx).",
        id="emmm.W002",
    )]
