"""Benchmark: the tracking hot paths. `tracking_urls` (called by /rank for every winner)
and token verification in µs per call; `recent_impressions` (called by /rank for frequency
caps) against a 100k-row read model next to a `SELECT 1` round trip; the impression beacon
and click services per call next to the floor of appending one event in a transaction.
Runs in a throw-away test database. `make bench-tracking` (figures: docs/benchmarks/tracking.md)."""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
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

N_CPU = int(os.environ.get("BENCH_TRACKING_N", "20000"))
N_DB = int(os.environ.get("BENCH_TRACKING_DB_N", "400"))
ROWS_USERS, ROWS_PER_USER = 1000, 100


def per_call_us(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    """Median over `repeats` runs of the mean µs per call."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


def latencies_ms(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - started) * 1e3)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    import hashlib
    import hmac

    import orjson

    from adplatform.eventlog.services import NewEvent, append_events
    from campaigns import services as campaigns
    from tracking import selectors, services
    from tracking.models import RecentImpression

    setup_test_environment()
    runner = get_runner(django.conf.settings)(verbosity=0)
    old = runner.setup_databases()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        adv = campaigns.advertiser_create(name="Bench", currency="EUR", timezone_name="UTC", actor="bench")
        spec = {
            "name": "bench",
            "objective": "clicks",
            "bid_model": "cpc",
            "bid": Decimal("0.01"),
            "daily_budget": Decimal("1000000"),
            "total_budget": Decimal("1000000"),
            "start": now - timedelta(days=1),
        }
        cid = campaigns.campaign_create(advertiser_id=adv, spec=spec, actor="bench")

        def ad(i: int = 0) -> services.ServedAd:
            return services.ServedAd(
                request_id=str(uuid.uuid4()),
                user_id=f"bench-user-{i % ROWS_USERS}",
                creative_id=1,
                campaign_id=cid,
                advertiser_id=adv,
                placement="product_below",
                position=1,
                pricing_model="cpc",
                price=Decimal("0.01"),
                currency="EUR",
                landing_url="https://shop.example/p/sku-123?utm_source=adplatform&utm_medium=cpc",
                served_at=now,
                segment="outdoor-mobile-mid",
                variant=1,
            )

        one = ad()
        payload = orjson.dumps([1, "c", 0, *services._fields(one, one.landing_url)])
        key = b"k" * 32
        urls_us = per_call_us(lambda: services.tracking_urls(ad=one), N_CPU)
        floor_us = per_call_us(lambda: hmac.digest(key, payload, hashlib.sha256), N_CPU)
        click_token = services.tracking_urls(ad=one)[1].rsplit("/", 1)[1]
        verify_us = per_call_us(lambda: services.served_ad_from_token(token=click_token, kind="c", now=now), N_CPU)

        # 100k frequency rows: 1000 shoppers × 100 impressions over 10 days
        RecentImpression.objects.bulk_create(
            [
                RecentImpression(
                    event_id=uuid.uuid4(),
                    user_key=f"bench-user-{u}",
                    at=now - timedelta(minutes=144 * k),
                    campaign_id=cid,
                    creative_id=k % 7,
                )
                for u in range(ROWS_USERS)
                for k in range(ROWS_PER_USER)
            ],
            batch_size=5000,
        )
        with connection.cursor() as cur:
            cur.execute("ANALYZE tracking_recent_impression")

        def select1(_i: int) -> None:
            with connection.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()

        since = now - timedelta(days=1)  # a 24 h cap window: 10 rows per shopper
        rt = latencies_ms(select1, 2000)
        recent = latencies_ms(
            lambda i: selectors.recent_impressions(user_id=f"bench-user-{i % 1000}", since=since), 2000
        )
        rows_back = len(selectors.recent_impressions(user_id="bench-user-1", since=since))

        def floor_append(i: int) -> None:
            with transaction.atomic():
                append_events(
                    [NewEvent(type="AdImpressed", stream=f"decision:{uuid.uuid4()}", data={"i": i}, occurred_at=now)]
                )

        ads = [ad(i) for i in range(N_DB)]
        imp_tokens = [services.tracking_urls(ad=a)[0].rsplit("/", 1)[1] for a in ads]
        clk_tokens = [services.tracking_urls(ad=a)[1].rsplit("/", 1)[1] for a in ads]
        append_floor = latencies_ms(floor_append, N_DB)
        impression = latencies_ms(lambda i: services.impression_record(token=imp_tokens[i]), N_DB)
        click = latencies_ms(lambda i: services.click_record(token=clk_tokens[i]), N_DB)
        repeat = latencies_ms(lambda i: services.click_record(token=clk_tokens[i]), N_DB)

        # attribution projection replay: N_ATTR tracked clicks and N_ATTR orders, 200 shoppers
        from adplatform.eventlog import projections
        from behaviour.services import events_ingest

        n_attr = int(os.environ.get("BENCH_TRACKING_ATTR_N", "2000"))
        t0 = now - timedelta(days=2)
        clicks = [
            NewEvent(
                type="AdClicked",
                stream=f"decision:{uuid.uuid4()}",
                data={
                    "request_id": f"r{i}",
                    "creative_id": 1,
                    "campaign_id": cid,
                    "advertiser_id": adv,
                    "placement": "p",
                    "position": 1,
                    "pricing_model": "cpc",
                    "price": "0.01",
                    "charge": "0",
                    "currency": "EUR",
                    "segment": None,
                },  # fmt: skip
                occurred_at=t0 + timedelta(seconds=30 * i),
                user_key=f"attr-{i % 200}",
                meta={"source": "redirect"},
            )
            for i in range(n_attr)
        ]
        with transaction.atomic():
            append_events(clicks)
        orders = [
            {
                "event_id": str(uuid.uuid4()),
                "type": "purchase",
                "user_id": f"attr-{i % 200}",
                "timestamp": (t0 + timedelta(seconds=30 * i + 15)).isoformat(),
                "properties": {
                    "order_id": f"o{i}",
                    "items": [{"product_id": "p", "quantity": 1, "price": "5"}],
                    "revenue": "5",
                    "currency": "EUR",
                },  # fmt: skip
            }
            for i in range(n_attr)
        ]
        for k in range(0, n_attr, 500):
            events_ingest(raw_events=orders[k : k + 500])
        started = time.perf_counter()
        applied = projections.rebuild(projections.get_projection("attribution"))
        attr_rate = applied / (time.perf_counter() - started)

        print(f"{'case':<62} {'value':>16}")
        print(f"{'tracking_urls (two tokens), µs/call':<62} {urls_us:>16.1f}")
        print(f"{'  floor: one HMAC-SHA256 of the same payload, µs':<62} {floor_us:>16.1f}")
        print(f"{'token verify (click), µs/call':<62} {verify_us:>16.1f}")
        print(
            f"{'  token lengths impression/click, chars':<62} {len(services.tracking_urls(ad=one)[0]) - 18:>8}/{len(click_token):<7}"
        )
        print(f"{'recent_impressions, 100k rows, 24 h window, p50/p99 ms':<62} {recent[0]:>8.3f}/{recent[1]:<7.3f}")
        print(f"{'  floor: SELECT 1 round trip, p50/p99 ms':<62} {rt[0]:>8.3f}/{rt[1]:<7.3f}")
        print(f"{'  rows returned per shopper':<62} {rows_back:>16}")
        print(f"{'impression_record (new), p50/p99 ms':<62} {impression[0]:>8.3f}/{impression[1]:<7.3f}")
        print(
            f"{'click_record (new, implied impression + CPC charge), p50/p99 ms':<62} {click[0]:>8.3f}/{click[1]:<7.3f}"
        )
        print(f"{'click_record (repeat, no-op), p50/p99 ms':<62} {repeat[0]:>8.3f}/{repeat[1]:<7.3f}")
        print(
            f"{'  floor: append one event in a transaction, p50/p99 ms':<62} {append_floor[0]:>8.3f}/{append_floor[1]:<7.3f}"
        )
        label = f"attribution rebuild, {applied} events (half orders), events/s"
        print(f"{label:<62} {attr_rate:>16.0f}")
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
