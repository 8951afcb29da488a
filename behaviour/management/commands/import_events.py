"""import_events PATH --format jsonl|taobao: bulk import with progress, ETA and resume
(taobao: PATH is the dataset directory; the importer lives in marketplace.services)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from behaviour.importers import import_jsonl
from marketplace.services import taobao_import, taobao_total_bytes


class Command(BaseCommand):
    help = "Import behaviour events from a file (same validation and idempotency as POST /events)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")
        parser.add_argument("--format", choices=["jsonl", "taobao"], default="jsonl")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--restart", action="store_true", help="ignore the saved resume offset")
        parser.add_argument("--show-rejections", type=int, default=20, help="print at most N rejected lines")

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["path"])
        if opts["format"] == "taobao":
            self._taobao(path, opts)
            return
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

    def _taobao(self, path: Path, opts: dict[str, Any]) -> None:
        if not path.is_dir():
            raise CommandError(f"--format taobao takes the dataset directory: {path} is not one")
        with tqdm(total=taobao_total_bytes(path), unit="B", unit_scale=True, desc=path.name, file=self.stderr) as bar:
            try:
                r = taobao_import(
                    path=path,
                    state_dir=settings.VAR_DIR / "imports",
                    restart=opts["restart"],
                    progress=bar.update,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        resumed = f" (resumed after {r.resumed_bytes} bytes)" if r.resumed_bytes else ""
        self.stdout.write(
            f"{path}: {r.advertisers} advertisers, {r.campaigns} campaigns, {r.creatives} creatives, "
            f"{r.products} products, {r.placements} placements, {r.impressions} impressions, {r.clicks} clicks, "
            f"{r.behaviour_events} behaviour events, {r.duplicates} duplicates, {r.skipped_rows} rows skipped"
            f"{resumed}"
        )
