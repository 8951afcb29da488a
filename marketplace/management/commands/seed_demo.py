"""seed_demo --size demo --seed 42: load a synthetic world and its history through the
platform's services (idempotent; progress bars per phase)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from adplatform.access import scopes
from adplatform.access.services import api_key_create
from marketplace.services import world_seed
from marketplace.world import PRESETS


class Command(BaseCommand):
    help = "Seed a synthetic marketplace world (catalogue, advertisers, campaigns, creatives, history)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", default="demo", choices=sorted(PRESETS))
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--no-history", action="store_true", help="catalogue and campaigns only")
        parser.add_argument("--days", type=int, help="shorter history than the preset's (another world name)")
        parser.add_argument(
            "--create-key", action="store_true", help="also create a storefront key for `simulate` (printed last)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        bars: dict[str, tqdm[Any]] = {}

        def progress(phase: str, done: int, total: int) -> None:
            bar = bars.get(phase)
            if bar is None:
                bar = bars[phase] = tqdm(total=total, desc=phase, file=self.stderr, leave=True)
            bar.update(done - bar.n)

        started = time.monotonic()
        try:
            result = world_seed(
                size=opts["size"],
                seed=opts["seed"],
                days=opts["days"],
                history=not opts["no_history"],
                progress=progress,
            )
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(
            f"world {result.world}: {result.products_created} products, {result.advertisers_created} advertisers, "
            f"{result.campaigns_created} campaigns, {result.creatives_created} creatives created; "
            f"{result.events_accepted} behaviour events ({result.events_duplicate} duplicates), "
            f"{result.exposures_stored} ad history events; {result.days_loaded} days loaded "
            f"in {time.monotonic() - started:.1f}s; manifest {result.manifest_path}"
        )
        if opts["create_key"]:
            key = api_key_create(scopes=[scopes.EVENTS_WRITE, scopes.ADS_RANK], name=f"simulator {result.world}")
            self.stdout.write(f"storefront key (events:write ads:rank):\n{key.key}")
