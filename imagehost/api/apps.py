from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API as its own small app (label ``api``) so its migrations stand alone."""

    name = "imagehost.api"
    label = "api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        # Registers the OpenAPI extension for ApiTokenAuthentication.
        from . import schema  # noqa: F401  (registers it)
        from .models import revoke_tokens_on_new_password

        pre_save.connect(revoke_tokens_on_new_password, sender=get_user_model(), dispatch_uid="api-revoke-on-password")
