"""rebuild_projections [NAME ...]: reset read models and replay the log from zero."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from adplatform.eventlog import projections


class Command(BaseCommand):
    help = "Rebuild projections from position zero (all when no NAME is given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="projection names (default: all)")

    def handle(self, *args: Any, **opts: Any) -> None:
        known = projections.registry()
        names = opts["names"] or list(known)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CommandError(f"unknown projection(s): {', '.join(unknown)}; known: {', '.join(known)}")
        for name in names:
            started = time.monotonic()
            n = projections.rebuild(known[name])
            self.stdout.write(f"{name}: replayed {n} events in {time.monotonic() - started:.1f}s")
