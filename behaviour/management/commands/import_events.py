"""import_events PATH --format jsonl: bulk import with progress, ETA and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from behaviour.importers import import_jsonl


class Command(BaseCommand):
    help = "Import behaviour events from a file (same validation and idempotency as POST /events)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")
        parser.add_argument("--format", choices=["jsonl"], default="jsonl")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--restart", action="store_true", help="ignore the saved resume offset")
        parser.add_argument("--show-rejections", type=int, default=20, help="print at most N rejected lines")

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["path"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        if not 1 <= opts["batch_size"] <= settings.MAX_EVENTS_PER_REQUEST:
            raise CommandError(f"--batch-size must be 1..{settings.MAX_EVENTS_PER_REQUEST}")
        with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, file=self.stderr) as bar:
            stats = import_jsonl(
                path,
                state_dir=settings.VAR_DIR / "imports",
                batch_size=opts["batch_size"],
                restart=opts["restart"],
                progress=bar.update,
            )
        for line, errors in stats.rejections[: opts["show_rejections"]]:
            self.stderr.write(f"line {line}: {errors}")
        resumed = f" (resumed after {stats.skipped_bytes} bytes)" if stats.skipped_bytes else ""
        self.stdout.write(
            f"{path}: {stats.lines} lines, {stats.accepted} accepted, {stats.duplicates} duplicates, "
            f"{stats.rejected} rejected{resumed}"
        )
