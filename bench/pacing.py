"""bench/pacing: one day of /rank traffic compressed into minutes, driven in-process through
the real services with an injected clock, billed through tracking — how close does even
pacing land on each campaign's daily budget?

    make bench-pacing            (or: .venv/bin/python bench/pacing.py --step 120)

A private embedded Postgres under var/bench-pacing (reset each run). Campaigns (even
pacing, some dayparted, one asap for contrast) compete for a 2-slot placement. The clock
moves in `--step` second steps from local midnight; each step sends a diurnal number of
requests to `delivery.services.rank_decide(now=t, rng=...)`, records every winner's
impression through `tracking.services.impression_record` (CPM billing) and a click with
probability `--ctr` through `click_record` (CPC billing, `campaigns.budget_charge`).
The pacing controller ticks every `--step` seconds of simulated time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine, now_iso  # noqa: E402

CAMPAIGNS = [  # (name, bid, daily budget, pacing, dayparts)
    ("even-a", "0.60", "60.00", "even", []),
    ("even-b", "0.50", "40.00", "even", []),
    ("even-c", "0.45", "75.00", "even", []),
    ("even-daypart", "0.55", "30.00", "even", [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "08:00", "end": "20:00"}]),
    ("even-evening", "0.40", "25.00", "even", [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "17:00", "end": "23:00"}]),
    ("asap", "0.50", "30.00", "asap", []),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", type=float, default=120.0, help="simulated seconds per step (= controller interval)")
    ap.add_argument("--requests", type=float, default=14.0, help="mean requests per step")
    ap.add_argument("--ctr", type=float, default=0.10, help="click probability per impression (a knob: spend must outrun budgets)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "var" / "bench-pacing.json"))
    args = ap.parse_args()

    var = ROOT / "var" / "bench-pacing"
    shutil.rmtree(var, ignore_errors=True)
    os.environ.update({"ADPLATFORM_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "adplatform.settings.local",
                       "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING"})  # fmt: skip
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from campaigns import selectors as campaign_selectors
    from campaigns import services as campaigns
    from delivery.services import RankRequest, rank_decide
    from tracking import services as tracking

    settings.DELIVERY_PACING_INTERVAL_SECONDS = args.step
    settings.DELIVERY_EXPLORATION_RATE = 0.0
    settings.AUTO_APPROVE_CREATIVES = True
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    campaigns.placement_upsert(spec={"key": "home_top", "page_types": ["home"], "slots": 2,
                                     "floor_cpm": Decimal("0.50")}, actor="bench")  # fmt: skip
    ids = {}
    for name, bid, budget, pacing_mode, dayparts in CAMPAIGNS:
        adv = campaigns.advertiser_create(name=name, currency="EUR", timezone_name="UTC", actor="bench")
        camp = campaigns.campaign_create(advertiser_id=adv, actor="bench", status="active", spec={
            "name": name, "objective": "clicks", "bid_model": "cpc", "bid": Decimal(bid),
            "daily_budget": Decimal(budget), "total_budget": Decimal(budget) * 10, "start": day - timedelta(days=1),
            "end": None, "timezone": "UTC", "dayparts": dayparts, "pacing": pacing_mode, "frequency_caps": [],
            "targeting": {}})  # fmt: skip
        for j in range(3):
            campaigns.creative_create(advertiser_id=adv, campaign_id=camp, actor="bench", spec={
                "headline": f"{name} {j}", "body": "", "image_url": "https://cdn.example/i.jpg",
                "landing_url": "https://shop.example/p", "product_id": None, "variants": []})  # fmt: skip
        ids[name] = camp

    rng = random.Random(args.seed)
    steps = int(86400 / args.step)
    t0 = time.perf_counter()
    n_requests = clicks = 0
    exhausted_at: dict[str, float] = {}
    for s in range(steps):
        now = day + timedelta(seconds=s * args.step)
        hour = s * args.step / 3600
        shape = 1.0 + 0.8 * math.sin(2 * math.pi * (hour / 24 - 0.3))  # trough ~01:00, peak ~13:00
        n = max(0, round(rng.gauss(args.requests * shape, 1.0)))
        # a monotonic clock: requests in time order within the step
        for at in sorted(now + timedelta(seconds=rng.uniform(0, args.step)) for _ in range(n)):
            result = rank_decide(request=RankRequest(user_id=f"u-{rng.randrange(5000)}", placement="home_top",
                                                     page_type="home", limit=2), now=at, rng=rng)  # fmt: skip
            n_requests += 1
            for ad in result.ads:
                tracking.impression_record(token=ad.impression_url.rsplit("/", 1)[1], at=at)
                if rng.random() < args.ctr:
                    tracking.click_record(token=ad.click_url.rsplit("/", 1)[1], at=at + timedelta(seconds=2))
                    clicks += 1
        if s % max(1, steps // 12) == 0:
            print(f"[sim] {hour:5.1f} h, {n_requests} requests, {time.perf_counter() - t0:.0f}s", flush=True)
        spend = campaign_selectors.spend_by_campaign(timezones={cid: "UTC" for cid in ids.values()}, at=now)
        for name, _bid, budget, _p, _d in CAMPAIGNS:
            if name not in exhausted_at and spend[ids[name]][0] >= Decimal(budget):
                exhausted_at[name] = hour
    end = day + timedelta(hours=23, minutes=59)
    spend = campaign_selectors.spend_by_campaign(timezones={cid: "UTC" for cid in ids.values()}, at=end)
    rows = []
    for name, _bid, budget, pacing_mode, dayparts in CAMPAIGNS:
        spent = spend[ids[name]][0]
        rows.append({"campaign": name, "pacing": pacing_mode, "dayparts": bool(dayparts), "budget": budget,
                     "spent": str(spent.quantize(Decimal("0.01"))), "ratio": round(float(spent / Decimal(budget)), 4),
                     "budget_used_up_at_h": exhausted_at.get(name)})  # fmt: skip
    out = {"machine": machine(), "at": now_iso(), "step_s": args.step, "requests": n_requests, "clicks": clicks,
           "wall_s": round(time.perf_counter() - t0, 1), "campaigns": rows}  # fmt: skip
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
