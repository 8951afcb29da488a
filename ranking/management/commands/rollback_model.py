"""`manage.py rollback_model`: withdraw the champion, reinstate the previous one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ranking import services


class Command(BaseCommand):
    help = "Roll the champion model back to the previously promoted version."

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            name = services.model_rollback(actor="cli")
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"champion is now {name}")
