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
