"""bench/loadgen: an open-loop HTTP load generator (importable, and one command).

    make bench-loadgen                       (rank and events against a platform it starts)
    .venv/bin/python bench/loadgen.py --target rank --url http://127.0.0.1:8000 --key KEY --rate 200 --duration 60

Open loop: request i is *scheduled* at t0 + i / rate whatever happened to earlier ones,
and its latency is measured from that scheduled time, not from when a free connection
finally sent it. A server that falls behind therefore shows its queueing in the
percentiles instead of silently slowing the client down (coordinated omission). Requests
go out over a pool of keep-alive connections (one per worker thread); if every worker is
busy, the backlog waits in the dispatch queue and that wait counts.

Other benches call `run_open_loop(...)` and read a `LoadResult`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile  # noqa: E402


@dataclass
class LoadResult:
    rate: float  # scheduled requests per second
    duration: float  # seconds of scheduling
    scheduled: int
    completed: int
    errors: int  # non-2xx answers, connection failures, timeouts
    latencies: list[float]  # seconds from scheduled send time to the full response, completed requests
    timeline: list[tuple[int, float]] = field(default_factory=list)  # (request index, latency), completed
    statuses: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0  # first scheduled send to last response
    max_dispatch_lag: float = 0.0  # how late the dispatcher itself handed out a request (client health)
    first_errors: list[str] = field(default_factory=list)

    def ms(self, q: float) -> float:
        return round(percentile(self.latencies, q) * 1000, 2)

    @property
    def error_rate(self) -> float:
        return self.errors / self.scheduled if self.scheduled else 0.0

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0

    def summary(self) -> dict[str, float | int]:
        return {
            "rate_rps": self.rate,
            "duration_s": self.duration,
            "scheduled": self.scheduled,
            "completed": self.completed,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 5),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": self.ms(0.5),
            "p95_ms": self.ms(0.95),
            "p99_ms": self.ms(0.99),
            "max_ms": round(max(self.latencies) * 1000, 2) if self.latencies else float("nan"),
            "max_dispatch_lag_ms": round(self.max_dispatch_lag * 1000, 2),
        }


def run_open_loop(
    *,
    url: str,
    path: str,
    make_body: Callable[[int], bytes],
    rate: float,
    duration: float,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    connections: int = 32,
    timeout: float = 10.0,
    ok_statuses: Sequence[int] = (200, 201, 202, 204),
    on_response: Callable[[int, int, bytes], None] | None = None,
) -> LoadResult:
    """Send `rate` × `duration` requests at fixed times; `make_body(i)` builds request i
    (called ahead of its send time, off the measured path). `on_response(i, status, body)`
    runs in the worker after the latency is taken."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    n = int(rate * duration)
    bodies = [make_body(i) for i in range(n)]
    work: queue.Queue[tuple[int, float] | None] = queue.Queue()
    lock = threading.Lock()
    result = LoadResult(rate=rate, duration=duration, scheduled=n, completed=0, errors=0, latencies=[])
    last_done = [0.0]

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            item = work.get()
            if item is None:
                break
            i, scheduled = item
            status, data, err = 0, b"", ""
            for attempt in (0, 1):
                reused = conn is not None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, port, timeout=timeout)
                    conn.request(method, path, body=bodies[i], headers=hdrs)
                    resp = conn.getresponse()
                    data = resp.read()
                    status = resp.status
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException) as exc:
                    err = f"{type(exc).__name__}: {exc}"
                    if conn is not None:
                        conn.close()
                    conn = None
                    # like any pooled client: a keep-alive connection the server closed while
                    # idle fails before it answers; resend once on a new connection (the
                    # latency still counts from the scheduled time)
                    stale = isinstance(exc, (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected))
                    if not (reused and stale and attempt == 0):
                        break
            done = time.perf_counter()
            with lock:
                last_done[0] = max(last_done[0], done)
                key = str(status) if status else "error"
                result.statuses[key] += 1
                if status in ok_statuses:
                    result.completed += 1
                    result.latencies.append(done - scheduled)
                    result.timeline.append((i, done - scheduled))
                else:
                    result.errors += 1
                    if len(result.first_errors) < 5:
                        result.first_errors.append(err or f"{status} {data[:200]!r}")
            if on_response is not None and status:
                on_response(i, status, data)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        result.max_dispatch_lag = max(result.max_dispatch_lag, time.perf_counter() - scheduled)
        work.put((i, scheduled))
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(timeout + duration)
    result.elapsed = max(0.0, last_done[0] - t0)
    return result


# --- the standalone command -----------------------------------------------------------------

SEED_SCRIPT = """
from decimal import Decimal
from datetime import timedelta
from django.utils import timezone
from campaigns import services as c
from catalog.services import ProductInput, products_upsert
now = timezone.now()
c.placement_upsert(spec={"key": "home_top", "page_types": ["home", "category", "product", "search", "cart"],
                         "slots": 2, "floor_cpm": Decimal("0.50")}, actor="loadgen")
products_upsert(products=[ProductInput(product_id=f"sku-{i}", title=f"Product {i}", category_path=("cat", f"leaf-{i % 10}"),
    brand=f"brand-{i % 7}", price=Decimal("19.90"), currency="EUR", url="https://shop.example/p", image_url="",
    in_stock=True) for i in range(200)], actor="loadgen")
for a in range(20):
    adv = c.advertiser_create(name=f"adv-{a}", currency="EUR", timezone_name="UTC", actor="loadgen")
    for k in range(2):
        camp = c.campaign_create(advertiser_id=adv, actor="loadgen", status="active", spec={
            "name": f"camp-{a}-{k}", "objective": "clicks", "bid_model": "cpc", "bid": Decimal("0.40") + Decimal(a) / 100,
            "daily_budget": Decimal("100000"), "total_budget": Decimal("1000000"), "start": now - timedelta(days=1),
            "end": None, "timezone": "UTC", "dayparts": [], "pacing": "asap", "frequency_caps": [], "targeting": {}})
        for j in range(5):
            cr = c.creative_create(advertiser_id=adv, campaign_id=camp, actor="loadgen", spec={
                "headline": f"Ad {a}-{k}-{j}", "body": "", "image_url": "https://cdn.example/i.jpg",
                "landing_url": "https://shop.example/p", "product_id": f"sku-{(a * 10 + k * 5 + j) % 200}", "variants": []})
            c.creative_review(creative_id=cr, decision="approve", actor="loadgen")
"""


def rank_body(rng: random.Random, n_users: int = 10_000) -> Callable[[int], bytes]:
    def make(i: int) -> bytes:
        page = rng.choice(["home", "category", "product", "cart"])
        return json.dumps(
            {"user_id": f"shopper-{rng.randrange(n_users)}", "placement": "home_top", "limit": 2,
             "context": {"page_type": page, "device": rng.choice(["mobile", "desktop"])}}  # fmt: skip
        ).encode()

    return make


def events_body(rng: random.Random, batch: int = 10) -> Callable[[int], bytes]:
    def make(i: int) -> bytes:
        now = datetime.now(UTC).isoformat()
        events = [
            {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "type": "product_view",
             "user_id": f"shopper-{rng.randrange(10_000)}", "timestamp": now,
             "properties": {"product_id": f"sku-{rng.randrange(200)}"}}  # fmt: skip
            for _ in range(batch)
        ]
        return json.dumps({"events": events}).encode()

    return make


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=["rank", "events", "both"], default="both")
    ap.add_argument("--url", help="an already running server (default: start one under var/bench-loadgen)")
    ap.add_argument("--key", help="API key with ads:rank / events:write (with --url)")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--events-batch", type=int, default=10)
    args = ap.parse_args()
    plat = None
    url, key = args.url, args.key
    if url is None:
        from bench.common import Platform

        plat = Platform("loadgen", web_workers=2, threads=4)
        plat.start()
        if not (plat.var_dir / "seeded").exists():
            plat.manage("shell", "-c", SEED_SCRIPT)
            (plat.var_dir / "seeded").write_text("1")
        key = plat.manage("create_api_key", "--scopes", "ads:rank,events:write").strip().splitlines()[-1]
        url = plat.url
    assert key, "--key is required with --url"
    try:
        out = {}
        targets = ["rank", "events"] if args.target == "both" else [args.target]
        for target in targets:
            rng = random.Random(1)
            path, make = (
                ("/api/v1/rank", rank_body(rng)) if target == "rank" else ("/api/v1/events", events_body(rng, args.events_batch))
            )
            res = run_open_loop(url=url, path=path, make_body=make, rate=args.rate, duration=args.duration,
                                headers={"Authorization": f"Bearer {key}"}, connections=args.connections)  # fmt: skip
            out[target] = {**res.summary(), "statuses": dict(res.statuses), "first_errors": res.first_errors}
        print(json.dumps(out, indent=2))
    finally:
        if plat is not None:
            plat.stop()


if __name__ == "__main__":
    main()
