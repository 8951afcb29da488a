from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "adplatform.access"
    label = "access"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"
