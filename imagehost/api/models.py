"""API tokens: created, named and revoked by a user; only a hash is stored."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from imagehost.services.errors import InvalidInput

TOKEN_PREFIX = "emmm_"


def hash_token(raw: str) -> str:
    """SHA-256 hex digest of a raw API token (tokens are 256-bit random, so no slow hash is needed)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A named credential for programs; the raw value is shown once, at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters of the token, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        """Create a token for ``user``; return the row and the raw token (never stored).
        InvalidInput once the user has ``EMMM_MAX_API_TOKENS`` active ones."""
        limit = settings.EMMM_MAX_API_TOKENS
        if cls.objects.active().filter(user=user).count() >= limit:
            raise InvalidInput(f"You have {limit} active API tokens, the most an account may have: revoke one you no longer use.")
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name.strip()[:100] or "token", prefix=raw[:12], digest=hash_token(raw))
        return token, raw

    @classmethod
    def revoke_all(cls, user) -> int:
        """Revoke every active token of ``user``; returns how many."""
        return cls.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())

    @classmethod
    def lookup(cls, raw: str) -> "ApiToken | None":
        """The active token whose hash matches ``raw``, or None."""
        if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
            return None
        return cls.objects.active().select_related("user").filter(digest=hash_token(raw)).first()

    def revoke(self) -> None:
        """Revoke the token; further requests carrying it are rejected with 401."""
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


def revoke_tokens_on_new_password(sender, instance, update_fields=None, **kwargs) -> None:
    """``pre_save`` of the user model: a new password ends the account's API tokens, as it ends
    its other sessions, wherever it is set (the site's forms, the admin, ``manage.py
    changepassword``): a token minted by whoever held the account must not outlive it. The
    number revoked is left on the instance (``revoked_api_tokens``) for the page to say.

    A new password is what ``set_password`` records in ``_password`` until the save (Django's own
    test for ``password_validation.password_changed``): a hash upgraded at login clears it, so
    an upgrade changes the stored hash without ending anything."""
    if instance.pk is not None and getattr(instance, "_password", None) is not None:
        instance.revoked_api_tokens = ApiToken.revoke_all(instance)
