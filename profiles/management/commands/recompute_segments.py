"""`manage.py recompute_segments [--now] [--k K]`: enqueue the segment recompute, or run it here."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from profiles import services


class Command(BaseCommand):
    help = "Recompute shopper segments (enqueued unless --now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", action="store_true", help="run in this process instead of on a worker")
        parser.add_argument("--k", type=int, default=None, help="number of segments (default: setting / silhouette)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["now"]:
            from profiles.tasks import segments_recompute

            result = segments_recompute.delay()
            self.stdout.write(f"enqueued profiles.segments_recompute ({result.id})")
            return
        r = services.segments_recompute(k=options["k"], seed=options["seed"])
        self.stdout.write(f"run {r.run_id}: {r.users} shoppers in {r.k} segments ({r.seconds:.1f}s)")
        for s in r.segments:
            self.stdout.write(f"  {s.size:>8}  {s.key}  {s.name}")
