"""`manage.py refresh_embeddings [--now]`: enqueue the embedding refresh, or run it here."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from profiles import services


class Command(BaseCommand):
    help = "Refresh product/creative text embeddings and shopper content vectors (enqueued unless --now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", action="store_true", help="run in this process instead of on a worker")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["now"]:
            from profiles.tasks import embeddings_refresh

            result = embeddings_refresh.delay()
            self.stdout.write(f"enqueued profiles.embeddings_refresh ({result.id})")
            return
        started = time.monotonic()

        def progress(kind: str, done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            eta = (total - done) / rate if rate else 0.0
            sys.stderr.write(f"\r{kind}: {done}/{total} ({rate:.0f}/s, ETA {eta:.0f}s)   ")
            if done == total:
                sys.stderr.write("\n")

        r = services.embeddings_refresh(progress=progress)
        self.stdout.write(
            f"version {r.version}: {r.products} products, {r.creatives} creatives encoded "
            f"({r.creatives_removed} removed), {r.users} shopper vectors ({r.users_removed} removed), "
            f"activated={r.activated}, dropped={list(r.dropped_versions)} in {r.seconds:.1f}s"
        )
