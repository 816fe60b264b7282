from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API as its own small app (label ``api``) so its migrations stand alone."""

    name = "imagehost.api"
    label = "api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI extension for ApiTokenAuthentication.
        from . import schema  # noqa: F401  (registers it)
