"""Generate a synthetic marketplace world and its history into files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from marketplace.world import PRESETS, build_world, expected_sessions, preset
from marketplace.world_io import write_world


class Command(BaseCommand):
    help = "Generate a deterministic synthetic marketplace (world + history) under --out."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", "--preset", dest="size", choices=sorted(PRESETS), default="test")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--out", required=True, help="directory for world.json, events/exposures .jsonl.gz")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        cfg = preset(opts["size"], seed=opts["seed"])
        world = build_world(cfg)
        bar = tqdm(
            total=expected_sessions(world, opts["days"]),
            unit="session",
            desc=f"world {opts['size']}",
            disable=opts["no_progress"],
        )
        manifest = write_world(world, Path(opts["out"]), days=opts["days"], progress=bar.update)
        bar.close()
        counts = ", ".join(
            f"{k}={manifest[k]}" for k in ("users", "products", "creatives", "events", "exposures", "clicks")
        )
        self.stdout.write(f"world written to {opts['out']}: {counts}")
