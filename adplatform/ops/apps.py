from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "adplatform.ops"
    label = "ops"
    verbose_name = "Operations"
