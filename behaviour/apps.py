from django.apps import AppConfig


class BehaviourConfig(AppConfig):
    name = "behaviour"
    default_auto_field = "django.db.models.BigAutoField"
