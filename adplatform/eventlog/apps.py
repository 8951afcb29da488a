from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class EventlogConfig(AppConfig):
    name = "adplatform.eventlog"
    label = "eventlog"
    verbose_name = "Event log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every app registers its event types in its events.py; load them all up front so
        # the registry never depends on import order.
        autodiscover_modules("events")
