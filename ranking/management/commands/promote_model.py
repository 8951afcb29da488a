"""`manage.py promote_model NAME`: promote a registered version if it beats the champion
on its own holdout (the champion is re-evaluated there)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ranking import services


class Command(BaseCommand):
    help = "Promote a model version (only if it beats the champion on the same holdout)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            result = services.model_promote(version=opts["version"], actor="cli")
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(("promoted: " if result.promoted else "not promoted: ") + result.reason)
