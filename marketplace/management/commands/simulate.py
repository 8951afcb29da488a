"""simulate: closed-loop storefront traffic against a running platform, over HTTP only.

Reads the world's manifest written by `seed_demo` (world key → platform id, advertiser
tokens), drives /events, /rank and the tracking beacons, prints per-policy CTR, CVR,
revenue, spend and ROAS with 95 % intervals and how impressions spread over advertisers,
categories and new creatives, optionally reconciles with GET /reports.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketplace.simulation import (
    BASELINES,
    POLICIES,
    SimulationConfig,
    interval_str,
    manifest_world,
    simulation_report,
)
from marketplace.world import PRESETS


class Command(BaseCommand):
    help = "Drive the running platform with simulated shoppers (HTTP only) and report per policy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="platform base URL")
        parser.add_argument("--key", required=True, help="storefront API key (events:write ads:rank)")
        parser.add_argument("--size", default="demo", choices=sorted(PRESETS))
        parser.add_argument("--world-seed", type=int, default=42, help="seed the world was seeded with")
        parser.add_argument("--days", type=int, help="history length the world was seeded with (if not the preset's)")
        parser.add_argument("--manifest", help="manifest JSON (default var/marketplace/<size>-<seed>[-d<days>].json)")
        parser.add_argument("--users", type=int, default=300, help="shoppers drawn from the world (all policies)")
        parser.add_argument("--sessions", type=int, help="sessions per policy (default 100 without --duration)")
        parser.add_argument("--duration", type=float, help="seconds; stops starting sessions after it")
        parser.add_argument("--rate", type=float, help="sessions started per second (open loop)")
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--seed", type=int, default=0, help="traffic seed")
        parser.add_argument("--policy", default="auto", choices=POLICIES)
        parser.add_argument("--compare", help="comma-separated policies run side by side, e.g. random,popular,auto")
        parser.add_argument("--attribution-window", type=int, default=None, help="seconds (default: platform's)")
        parser.add_argument("--reconcile", action="store_true", help="wait for GET /reports to match the totals")
        parser.add_argument("--reconcile-timeout", type=float, default=120.0)
        parser.add_argument("--json", dest="json_path", help="write the report as JSON here ('-' for stdout)")
        parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
        parser.add_argument(
            "--new-threshold",
            type=int,
            default=None,
            help="creatives with fewer impressions before the run count as new (default: the platform's "
            "DELIVERY_EXPLORATION_MIN_IMPRESSIONS)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from django.conf import settings

        size, wseed = opts["size"], opts["world_seed"]
        name = f"{size}-{wseed}" if opts["days"] is None else f"{size}-{wseed}-d{opts['days']}"
        path = Path(opts["manifest"] or Path(settings.VAR_DIR) / "marketplace" / f"{name}.json")
        if not path.is_file():
            raise CommandError(f"no manifest at {path}: run `manage.py seed_demo --size {size} --seed {wseed}` first")
        manifest = json.loads(path.read_text())
        world = manifest_world(manifest)
        policies = tuple(p.strip() for p in opts["compare"].split(",")) if opts["compare"] else (opts["policy"],)
        bad = [p for p in policies if p not in POLICIES]
        if bad:
            raise CommandError(f"unknown policy {', '.join(bad)}; choose from {', '.join(POLICIES)}")
        sessions = opts["sessions"] if opts["sessions"] is not None else (None if opts["duration"] else 100)
        window = opts["attribution_window"] or int(getattr(settings, "ATTRIBUTION_WINDOW_SECONDS", 7 * 86400))
        new_threshold = opts["new_threshold"]
        if new_threshold is None:
            new_threshold = int(getattr(settings, "DELIVERY_EXPLORATION_MIN_IMPRESSIONS", 200))
        cfg = SimulationConfig(
            base_url=opts["url"],
            api_key=opts["key"],
            policies=policies,
            users=opts["users"],
            sessions=sessions,
            duration=opts["duration"],
            rate=opts["rate"],
            concurrency=opts["concurrency"],
            seed=opts["seed"],
            attribution_window_seconds=window,
        )
        # progress + ETA: by sessions, or by elapsed seconds when only a duration is given
        by_time = sessions is None
        total = float(opts["duration"]) if sessions is None else float(sessions * len(policies))
        with tqdm(total=total, desc="sessions" if not by_time else "seconds", file=self.stderr) as bar:
            t0 = time.monotonic()

            def tick(n: int) -> None:
                bar.update(min(time.monotonic() - t0, total) - bar.n if by_time else n)

            try:
                report = simulation_report(
                    world=world,
                    manifest=manifest,
                    cfg=cfg,
                    reconcile=opts["reconcile"],
                    reconcile_timeout=opts["reconcile_timeout"],
                    draws=opts["bootstrap"],
                    progress=tick,
                    new_threshold=new_threshold,
                )
            except (RuntimeError, httpx.HTTPError) as exc:  # the platform refused us (key, scope, input)
                raise CommandError(str(exc)) from exc
        self._print(report)
        if opts["json_path"] == "-":
            self.stdout.write(json.dumps(report, indent=1))
        elif opts["json_path"]:
            Path(opts["json_path"]).write_text(json.dumps(report, indent=1))

    def _print(self, report: dict[str, Any]) -> None:
        w = self.stderr.write
        w(
            f"{report['sessions']} sessions in {report['elapsed_s']}s; events {report['events']}; "
            f"http errors {report['http_errors']}; new creatives (< {report['new_creatives']['threshold']} "
            f"impressions before the run): {report['new_creatives']['count']}/{report['new_creatives']['of']}"
        )
        for name, p in report["policies"].items():
            b = p["bootstrap"]
            w(
                f"[{name}] shoppers {p['shoppers']} requests {p['requests']} impressions {p['impressions']} "
                f"clicks {p['clicks']} conversions {p['conversions']} revenue {p['revenue']} spend {p['spend']}"
            )
            w(
                f"    CTR {interval_str(b['ctr'], pct=True)} (Wilson {interval_str(p['wilson']['ctr'], pct=True)})"
                f"  CVR {interval_str(b['cvr'], pct=True)}  ROAS {interval_str(b['roas'])}"
                f"  revenue/shopper {interval_str(b['revenue_per_shopper'])}"
            )
            f = p["fairness"]
            cov = f"{f['categories_shown']}/{f['categories']}" if f["categories"] else str(f["categories_shown"])
            w(
                f"    advertisers shown {f['advertisers_shown']}/{f['advertisers']}, creatives {f['creatives_shown']},"
                f" categories {cov}; impressions: Gini over advertisers {interval_str(f['gini_advertisers'])},"
                f" top 10 % advertisers {interval_str(f['top10pct_advertisers_share'], pct=True)},"
                f" new creatives {interval_str(f['new_creatives_share'], pct=True)}"
            )
            for baseline in BASELINES:
                diff = p.get("vs_" + baseline)
                if not diff:
                    continue
                w(
                    f"    vs {baseline}: CTR {interval_str(diff['ctr'], pct=True)}"
                    f"  CVR {interval_str(diff['cvr'], pct=True)}"
                    f"  ROAS {interval_str(diff['roas'])}  revenue/shopper {interval_str(diff['revenue_per_shopper'])}"
                )
        if "reconciliation" in report:
            verdict = "OK" if report["reconciled"] else "MISMATCH"
            w(f"reconciliation with GET /reports: {verdict} {report['reconciliation']}")
