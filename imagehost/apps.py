from django.apps import AppConfig


class ImagehostConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "imagehost"
    verbose_name = "Image host"
