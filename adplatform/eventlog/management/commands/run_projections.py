"""run_projections: the long-running projection consumer."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from adplatform.eventlog import consumer
from adplatform.gctuning import tune_gc_for_server


class Command(BaseCommand):
    help = "Apply new events to every projection continuously (Ctrl-C stops)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll", type=float, default=consumer.POLL_SECONDS, help="fallback poll interval, seconds")

    def handle(self, *args: Any, **opts: Any) -> None:
        tune_gc_for_server()
        consumer.run_forever(poll_seconds=opts["poll"])
