"""Benchmark: budget_charge throughput (charges/s) against a floor of the same number of
empty transactions, single-threaded and with 8 threads on one hot campaign vs one
campaign per thread. Runs in a throw-away test database. `make bench-campaigns`."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import get_runner, setup_test_environment  # noqa: E402

N_PER_THREAD = int(os.environ.get("BENCH_CHARGES", "400"))
THREADS = int(os.environ.get("BENCH_THREADS", "8"))


def _campaign() -> int:
    from campaigns import services

    adv = services.advertiser_create(name="Bench", currency="EUR", timezone_name="Europe/Berlin", actor="bench")
    now = datetime.now(UTC)
    spec = {
        "name": "bench",
        "objective": "clicks",
        "bid_model": "cpc",
        "bid": Decimal("0.01"),
        "daily_budget": Decimal("1000000"),
        "total_budget": Decimal("1000000"),
        "start": now - timedelta(days=1),
    }
    return services.campaign_create(advertiser_id=adv, spec=spec, actor="bench")


def _charge_loop(campaign_id: int) -> Callable[[], None]:
    from campaigns import services

    def run() -> None:
        at = datetime.now(UTC)
        for _ in range(N_PER_THREAD):
            with transaction.atomic():
                services.budget_charge(campaign_id=campaign_id, amount=Decimal("0.01"), at=at)

    return run


def _floor_loop() -> None:
    for _ in range(N_PER_THREAD):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT 1")


def _write_floor_loop(campaign_id: int) -> Callable[[], None]:
    """The cheapest write transaction: one unconditional UPDATE of the campaign's spend row
    (commits pay the WAL flush, like every charge)."""

    def run() -> None:
        for _ in range(N_PER_THREAD):
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(
                    "UPDATE campaigns_spend_total SET spent = spent + 0.01 WHERE campaign_id = %s", [campaign_id]
                )

    return run


def _timed(workers: list[Callable[[], None]]) -> float:
    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def inner() -> None:
            try:
                fn()
            finally:
                connection.close()

        return inner

    threads = [threading.Thread(target=wrap(w)) for w in workers]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return len(workers) * N_PER_THREAD / elapsed


def main() -> None:
    setup_test_environment()
    runner = get_runner(django.conf.settings)(verbosity=0)
    old = runner.setup_databases()
    try:
        hot = _campaign()
        own = [_campaign() for _ in range(THREADS)]
        floor_rows = [_campaign() for _ in range(THREADS)]
        from campaigns.models import CampaignSpend

        CampaignSpend.objects.bulk_create([CampaignSpend(campaign_id=c, spent=0) for c in floor_rows])
        rows = [
            ("floor: read-only transaction, 1 thread", _timed([_floor_loop])),
            ("floor: one-row UPDATE transaction, 1 thread", _timed([_write_floor_loop(floor_rows[0])])),
            ("budget_charge, 1 thread", _timed([_charge_loop(hot)])),
            (
                f"floor: one-row UPDATE, {THREADS} threads, same row",
                _timed([_write_floor_loop(floor_rows[0])] * THREADS),
            ),
            (f"budget_charge, {THREADS} threads, one hot campaign", _timed([_charge_loop(hot)] * THREADS)),
            (f"floor: one-row UPDATE, {THREADS} threads, own rows", _timed([_write_floor_loop(c) for c in floor_rows])),
            (f"budget_charge, {THREADS} threads, one campaign each", _timed([_charge_loop(c) for c in own])),
        ]
        spent = CampaignSpend.objects.get(campaign_id=hot).spent
        expected = Decimal("0.01") * N_PER_THREAD * (1 + THREADS)
        print(f"{'case':<52} {'ops/s':>10}")
        for name, rate in rows:
            print(f"{name:<52} {rate:>10.0f}")
        print(f"hot campaign spend {spent} == expected {expected}: {spent == expected}")
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
