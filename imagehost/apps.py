from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class ImagehostConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "imagehost"
    verbose_name = "Image host"

    def ready(self) -> None:
        """Create the embedded defaults' folders (``var/``, the filesystem broker's); settings only read."""
        Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
                if options.get(key):
                    Path(options[key]).mkdir(parents=True, exist_ok=True)
        from . import checks  # noqa: F401 (registers the system checks)
        from .services.cache import connect_signals  # invalidates the serving caches on change

        connect_signals()
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        pre_save.connect(_note_a_new_password, sender=get_user_model(), dispatch_uid="emmm-password-noted")
        post_save.connect(_tell_of_a_new_password, sender=get_user_model(), dispatch_uid="emmm-password-notice")


def _note_a_new_password(sender, instance, **kwargs) -> None:
    """``pre_save`` of the user model: a new password (``set_password`` leaves it in ``_password``
    until the save clears it; a hash upgraded at login does not) is noted for ``post_save``."""
    if instance.pk is not None and getattr(instance, "_password", None) is not None:
        instance._emmm_new_password = True


def _tell_of_a_new_password(sender, instance, **kwargs) -> None:
    """``post_save``: the account's address is told of a new password once its save is
    committed (never for a save that rolls back)."""
    if instance.__dict__.pop("_emmm_new_password", False):
        from django.db import transaction

        from .services import accounts

        transaction.on_commit(lambda: accounts.notify_password_changed(instance))
