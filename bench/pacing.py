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
The pacing controller ticks every `--step` seconds of simulated time. `--forecast` gives
the controller the day's hourly traffic shape (DELIVERY_PACING_TRAFFIC_SHAPE: a perfect
forecast, as if yesterday's curve repeated); without it pacing is even in time.

Per campaign: spent ÷ budget, the hour the budget was used up, and the spread: the share
of the budget spent by the midpoint of the campaign's active window, next to the share of
the window's traffic before that midpoint (the ideal for pacing even to opportunities;
0.5 is the ideal for pacing even in time).
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
from collections.abc import Mapping, Sequence
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


def traffic_shape(hour: float) -> float:
    return 1.0 + 0.8 * math.sin(2 * math.pi * (hour / 24 - 0.3))  # trough ~01:00, peak ~13:00


def hourly_shape() -> tuple[float, ...]:
    """Mean of traffic_shape over each hour: the forecast `--forecast` hands the controller."""
    return tuple(round(sum(traffic_shape(h + k / 60) for k in range(60)) / 60, 4) for h in range(24))


def active_span(dayparts: Sequence[Mapping[str, object]]) -> tuple[float, float]:
    if not dayparts:
        return 0.0, 24.0
    start, end = str(dayparts[0]["start"]), str(dayparts[0]["end"])
    return int(start[:2]) + int(start[3:]) / 60, int(end[:2]) + int(end[3:]) / 60


def traffic_share(a: float, b: float, mid: float) -> float:
    """Share of the traffic in [a, b) hours that falls before `mid`."""
    n = 1000
    xs = [a + (b - a) * (i + 0.5) / n for i in range(n)]
    return sum(traffic_shape(x) for x in xs if x < mid) / sum(traffic_shape(x) for x in xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", type=float, default=120.0, help="simulated seconds per step (= controller interval)")
    ap.add_argument("--requests", type=float, default=14.0, help="mean requests per step")
    ap.add_argument(
        "--ctr", type=float, default=0.10, help="click probability per impression (a knob: spend must outrun budgets)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--forecast", action="store_true", help="give the controller the hourly traffic shape")
    ap.add_argument("--time-constant", type=float, default=None, help="override pacing.TIME_CONSTANT_S (seconds)")
    ap.add_argument("--out", default=str(ROOT / "var" / "bench-pacing.json"))
    args = ap.parse_args()

    var = ROOT / "var" / "bench-pacing"
    from adplatform.embedded import stop_embedded_postgres

    stop_embedded_postgres(var)  # the last run's server outlives it: stop it before deleting its files
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
    from delivery.selectors import pacing_states
    from delivery.services import RankRequest, rank_decide
    from tracking import services as tracking

    settings.DELIVERY_PACING_INTERVAL_SECONDS = args.step
    settings.DELIVERY_EXPLORATION_RATE = 0.0
    settings.AUTO_APPROVE_CREATIVES = True
    settings.DELIVERY_PACING_TRAFFIC_SHAPE = hourly_shape() if args.forecast else ()
    if args.time_constant:
        from delivery import pacing

        pacing.TIME_CONSTANT_S = args.time_constant
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
    spent_by_mid: dict[str, Decimal] = {}
    by_hour: dict[str, list[float]] = {name: [] for name, *_ in CAMPAIGNS}  # share of budget spent by each hour
    for s in range(steps):
        now = day + timedelta(seconds=s * args.step)
        hour = s * args.step / 3600
        n = max(0, round(rng.gauss(args.requests * traffic_shape(hour), 1.0)))
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
        step_end = min(now + timedelta(seconds=args.step), day + timedelta(days=1, microseconds=-1))
        spend = campaign_selectors.spend_by_campaign(timezones={cid: "UTC" for cid in ids.values()}, at=step_end)
        for name, _bid, budget, _p, dayparts in CAMPAIGNS:
            if name not in exhausted_at and spend[ids[name]][0] >= Decimal(budget):
                exhausted_at[name] = hour + args.step / 3600  # used up during this step
            if (s + 1) % round(3600 / args.step) == 0:
                by_hour[name].append(round(float(spend[ids[name]][0] / Decimal(budget)), 3))
            a, b = active_span(dayparts)
            if name not in spent_by_mid and hour + args.step / 3600 >= (a + b) / 2:
                spent_by_mid[name] = spend[ids[name]][0]
    end = day + timedelta(hours=23, minutes=59)
    spend = campaign_selectors.spend_by_campaign(timezones={cid: "UTC" for cid in ids.values()}, at=end)
    throttles = pacing_states(campaign_ids=ids.values())
    rows = []
    for name, _bid, budget, pacing_mode, dayparts in CAMPAIGNS:
        spent = spend[ids[name]][0]
        a, b = active_span(dayparts)
        used_up = exhausted_at.get(name)
        row = throttles.get(ids[name])
        rows.append({"campaign": name, "pacing": pacing_mode, "active_h": [a, b], "budget": budget,
                     "spent": str(spent.quantize(Decimal("0.01"))), "ratio": round(float(spent / Decimal(budget)), 4),
                     "budget_used_up_at_h": None if used_up is None else round(used_up, 2),
                     "share_by_mid": round(float(spent_by_mid.get(name, spent) / Decimal(budget)), 3),
                     "traffic_share_by_mid": round(traffic_share(a, b, (a + b) / 2), 3),
                     "final_throttle": None if row is None else round(row.throttle, 4),
                     "share_by_hour": by_hour[name]})  # fmt: skip
    out = {"machine": machine(), "at": now_iso(), "step_s": args.step, "requests": n_requests, "clicks": clicks,
           "seed": args.seed, "forecast": args.forecast, "wall_s": round(time.perf_counter() - t0, 1),
           "campaigns": rows}  # fmt: skip
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    for r in rows:
        print(
            f"{r['campaign']:13s} {r['ratio']:.4f}  used up {r['budget_used_up_at_h']}  by mid {r['share_by_mid']:.3f}"
            f" (traffic {r['traffic_share_by_mid']:.3f})  throttle {r['final_throttle']}"
        )
    from django.db import connections

    connections.close_all()
    stop_embedded_postgres(var)


if __name__ == "__main__":
    main()
