"""bench/ingest: HTTP batch ingestion throughput vs a raw COPY of the same rows.

    make bench-ingest            (or: .venv/bin/python bench/ingest.py --events 200000)

Runs a real platform (gunicorn + projection consumer, private embedded Postgres), sends
batches of 500 over keep-alive HTTP from client threads, re-sends 10 % of the batches
(retries), then checks that the log holds every event exactly once. The floor is a
`COPY` of the same rows into the same (truncated) table in the same run. Projection lag
is sampled every 100 ms while the load runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Platform, machine, now_iso, percentile, update_benchmarks_doc  # noqa: E402

TYPES = ["page_view", "product_view", "search", "add_to_cart", "purchase"]


def make_events(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    base = datetime.now(UTC) - timedelta(hours=2)
    out = []
    for i in range(n):
        t = TYPES[rng.randrange(len(TYPES))]
        pid = f"sku-{rng.randrange(50_000)}"
        props = {
            "page_view": {"url": f"https://shop.example/c/{rng.randrange(100)}"},
            "product_view": {"product_id": pid},
            "search": {"query": rng.choice(["boots", "tent", "coffee grinder", "rain jacket"])},
            "add_to_cart": {"product_id": pid, "quantity": 1 + rng.randrange(3), "price": "24.90"},
            "purchase": {
                "order_id": f"o-{i}",
                "items": [{"product_id": pid, "quantity": 1, "price": "24.90"}],
                "revenue": "24.90",
                "currency": "EUR",
            },
        }[t]
        out.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": t,
                "user_id": f"shopper-{rng.randrange(100_000)}",
                "session_id": f"s-{rng.randrange(1_000_000)}",
                "timestamp": (base + timedelta(milliseconds=i)).isoformat(),
                "properties": props,
            }
        )
    return out


def run_http(url: str, key: str, bodies: list[bytes], threads: int) -> tuple[float, int, int, list[float]]:
    host, port = url.removeprefix("http://").split(":")
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    totals = {"accepted": 0, "duplicates": 0}
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    break
                _, body = queue.pop()
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            dt = time.perf_counter() - t0
            if resp.status != 202:
                errors.append(f"{resp.status} {data[:200]!r}")
                continue
            parsed = json.loads(data)
            with lock:
                totals["accepted"] += parsed["accepted"]
                totals["duplicates"] += parsed["duplicates"]
                latencies.append(dt)
        conn.close()

    started = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return elapsed, totals["accepted"], totals["duplicates"], latencies


def sample_lag(plat: Platform, stop: threading.Event, samples: list[float]) -> None:
    with plat.connect() as conn:
        while not stop.is_set():
            # the oldest event the projection has not applied yet: one index probe (a min()
            # over the whole backlog would scan it and steal CPU from the system under test)
            row = conn.execute(
                "SELECT extract(epoch FROM now() - e.recorded_at) FROM eventlog_event e, eventlog_checkpoint c "
                "WHERE c.name = 'activity' AND (e.tx_id, e.position) > (c.last_tx_id::text::xid8, c.last_position) "
                "ORDER BY e.tx_id, e.position LIMIT 1"
            ).fetchone()
            samples.append(float(row[0]) if row and row[0] is not None else 0.0)
            time.sleep(0.1)


def copy_floor(plat: Platform, events: list[dict], batch: int | None) -> float:
    """COPY the same rows (as the service would store them) into the truncated table,
    one transaction per `batch` rows (each durable, like an acknowledged HTTP batch) or,
    with batch=None, all in one transaction. Returns seconds."""
    from behaviour.events import WIRE_TO_STORED

    rows = []
    now = datetime.now(UTC)
    for e in events:
        rows.append(
            (
                e["event_id"],
                f"user:{e['user_id']}",
                WIRE_TO_STORED[e["type"]],
                1,
                datetime.fromisoformat(e["timestamp"]),
                now,
                e["user_id"],
                json.dumps(e["properties"]),
                json.dumps({"source": "api", "session_id": e["session_id"]}),
            )
        )
    size = batch or len(rows)
    sql = (
        "COPY eventlog_event (event_id, stream, type, schema_version, occurred_at, recorded_at, user_key, "
        "data, meta) FROM STDIN"
    )
    with plat.connect() as conn:
        conn.execute("TRUNCATE eventlog_event")
        t0 = time.perf_counter()
        for i in range(0, len(rows), size):
            with conn.transaction(), conn.cursor().copy(sql) as cp:
                for r in rows[i : i + size]:
                    cp.write_row(r)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--retry-share", type=float, default=0.10)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()

    events = make_events(args.events, seed=1)
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    rng = random.Random(2)
    retried = rng.sample(range(len(batches)), int(len(batches) * args.retry_share))
    bodies = [json.dumps({"events": b}).encode() for b in batches] + [
        json.dumps({"events": batches[i]}).encode() for i in retried
    ]
    rng.shuffle(bodies)

    plat = Platform("ingest", web_workers=args.web_workers, threads=2)
    plat.start()
    try:
        key = plat.manage("create_api_key", "--scopes", "events:write").strip().splitlines()[-1]
        with plat.connect() as conn:
            conn.execute(
                "TRUNCATE eventlog_event, eventlog_checkpoint, behaviour_user_activity, behaviour_product_activity"
            )
        lag: list[float] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_lag, args=(plat, stop, lag))
        sampler.start()
        elapsed, accepted, duplicates, latencies = run_http(plat.url, key, bodies, args.threads)
        # let the projection finish, measuring how long the tail takes
        drain_start = time.perf_counter()
        while lag and time.perf_counter() - drain_start < 120:
            time.sleep(0.2)
            if lag[-1] == 0.0:
                break
        stop.set()
        sampler.join()
        with plat.connect() as conn:
            stored = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM eventlog_event").fetchone()
        sent_events = sum(len(json.loads(b)["events"]) for b in bodies)
        http_rate = sent_events / elapsed
        unique_rate = len(events) / elapsed
        copy_rate = len(events) / copy_floor(plat, events, args.batch)
        bulk_rate = len(events) / copy_floor(plat, events, None)
    finally:
        plat.stop()

    ok = stored == (len(events), len(events)) and accepted == len(events) and duplicates == sent_events - len(events)
    result = {
        "events": len(events),
        "batches": len(bodies),
        "retried_batches": len(retried),
        "http_seconds": round(elapsed, 2),
        "http_events_per_s": round(http_rate),
        "unique_events_per_s": round(unique_rate),
        "copy_events_per_s": round(copy_rate),
        "ratio_to_copy": round(unique_rate / copy_rate, 3),
        "bulk_copy_events_per_s": round(bulk_rate),
        "ratio_to_bulk_copy": round(unique_rate / bulk_rate, 3),
        "request_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "request_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "projection_lag_p50_s": round(percentile(lag, 0.5), 2),
        "projection_lag_p99_s": round(percentile(lag, 0.99), 2),
        "stored": stored,
        "accepted": accepted,
        "duplicates": duplicates,
        "exactly_once": ok,
    }
    print(json.dumps(result, indent=2))
    if not args.no_doc:
        update_benchmarks_doc(
            "Ingestion (bench/ingest)",
            f"""Command: `make bench-ingest` (`.venv/bin/python bench/ingest.py --events {args.events} --batch {args.batch} --threads {args.threads} --web-workers {args.web_workers}`)
Machine: {machine()}; {now_iso()}. Server: gunicorn {args.web_workers} workers × 2 threads + projection consumer + embedded Postgres, all on this machine with the client.

| metric | value |
| --- | --- |
| events (unique) / batches sent (incl. {len(retried)} retried) | {len(events)} / {len(bodies)} |
| HTTP ingestion, events/s (all sent, incl. retries) | {result["http_events_per_s"]} |
| HTTP ingestion, unique events/s | {result["unique_events_per_s"]} |
| raw COPY of the same rows into the same table, one commit per {args.batch} rows, events/s (the floor: same durability per batch as an acknowledged request) | {result["copy_events_per_s"]} |
| HTTP unique rate ÷ that COPY rate | {result["ratio_to_copy"]} |
| raw COPY of all rows in one transaction, events/s (bulk-load ceiling) | {result["bulk_copy_events_per_s"]} |
| HTTP unique rate ÷ bulk COPY rate | {result["ratio_to_bulk_copy"]} |
| request latency p50 / p99 (batch of {args.batch}) | {result["request_p50_ms"]} ms / {result["request_p99_ms"]} ms |
| projection lag p50 / p99 (sampled every 100 ms under load) | {result["projection_lag_p50_s"]} s / {result["projection_lag_p99_s"]} s |
| stored rows / distinct ids; accepted; duplicates reported | {stored[0]} / {stored[1]}; {accepted}; {duplicates} |
| exactly once (nothing lost, nothing duplicated) | {"yes" if ok else "NO"} |

Targets (issue 2): ≥ 20,000 events/s and ≥ 30 % of COPY. Run-to-run spread on this
machine is about ±10 %; compare only the ratios taken in the same run.
What took the HTTP path from 12.4k to ~29k events/s (profiled in-process with cProfile):
the web and consumer processes freeze their start-up heap and raise the first GC threshold
(full collections re-scanned Django's heap ~every request: −7 ms per batch of 500); the
activity projection sends one jsonb document per upsert and commits asynchronously (ADR
0003); the validator builds field paths only for errors; the existence check sends ids as
one array literal. On 2026-12-04 the largest remaining cost was the consumer itself: the
projections that read only campaign, tracking or delivery events never moved their
checkpoint during a behaviour burst, so each consumer loop re-scanned the whole unread
tail once per such projection (six of them), competing with ingestion for the 2 cores.
They now move their checkpoint to the log's readable head (ADR 0002 addendum):
15.9–19.7k → ~29k unique events/s on the same command.
Log reads also sorted by the output column `tx_id::text::bigint` instead of walking the
`(tx_id, position)` index; fixed the same day (lag p99 ~80 s → ~41 s).
Projection lag: the consumer applies the eight projections one after another, about
4k events/s for all of them together on this box (rebuild over these 200k events:
profiles 30.0 s, activity 12.0 s, attribution 4.9 s, reports 1.7 s), so a 200k-event burst
at ~27k/s leaves a backlog that drains after the burst; the p99 above is that backlog's age,
not a steady-state figure (at 2,000 events/s see the profiles freshness figures).
""",
        )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
