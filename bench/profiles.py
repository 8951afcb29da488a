"""bench/profiles: profile freshness under sustained load, MiniLM embedding refresh
throughput, HNSW speed/recall against exact search, and how well segments recover planted
taste groups.

    make bench-profiles          (or: .venv/bin/python bench/profiles.py --products 50000)

One real platform (gunicorn + projection consumer on a private embedded Postgres):
1. catalog of `--products` products in `--groups` planted taste groups (titles, category
   paths, brands and price levels per group), sent through POST /catalog/products;
2. freshness: open-loop load of `--rate` events/s for `--seconds` through POST /events
   (shoppers browse mostly inside their planted group); every batch carries one probe
   event of a new shopper, and a poller (10 ms) notes when that shopper's profile row is
   visible: freshness = visible − 202 received (client clock = DB host clock);
3. `embeddings_refresh` in-process (all product texts, then every shopper's content vector,
   HNSW builds) — throughput in products/s;
4. `segments_recompute`, adjusted Rand index of segments vs planted groups (and of a
   shuffled assignment, the chance level);
5. HNSW at `--vectors` × 384 clustered synthetic vectors: p50 latency and recall@10 against
   exact search (ground truth by numpy brute force; exact SQL latency with the index off).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Platform, machine, now_iso, percentile, update_benchmarks_doc  # noqa: E402

GROUPS = [
    (
        "Outdoor",
        ["Camping", "Hiking"],
        ["Trek", "Summit", "Alpina"],
        ["tent", "sleeping bag", "backpack", "hiking boots", "headlamp", "trekking poles"],
        120,
        (0.7, 0.2, 0.1),
    ),
    (
        "Kitchen",
        ["Cookware", "Coffee"],
        ["Cozy", "Chefmate", "Brewly"],
        ["frying pan", "chef knife", "espresso cup", "coffee grinder", "saucepan", "mug"],
        25,
        (0.2, 0.7, 0.1),
    ),
    (
        "Gaming",
        ["Consoles", "Accessories"],
        ["Volt", "Pixel", "Arcadia"],
        ["game controller", "gaming headset", "console", "mechanical keyboard", "gaming mouse", "joystick"],
        70,
        (0.3, 0.3, 0.4),
    ),
    (
        "Beauty",
        ["Skincare", "Makeup"],
        ["Glow", "Lumi", "Velvet"],
        ["face serum", "moisturiser", "lipstick", "mascara", "sunscreen", "cleanser"],
        30,
        (0.8, 0.1, 0.1),
    ),
    (
        "Baby",
        ["Nursery", "Toys"],
        ["Tiny", "Cuddle", "Bloom"],
        ["baby stroller", "crib", "baby monitor", "plush toy", "teething ring", "diaper bag"],
        60,
        (0.6, 0.3, 0.1),
    ),
    (
        "Garden",
        ["Tools", "Plants"],
        ["Greenly", "Root", "Terra"],
        ["garden hose", "pruning shears", "flower pot", "lawn mower", "seed kit", "watering can"],
        45,
        (0.3, 0.6, 0.1),
    ),
    (
        "Fitness",
        ["Running", "Gym"],
        ["Swift", "Iron", "Pulse"],
        ["running shoes", "yoga mat", "dumbbell", "fitness tracker", "resistance band", "sports bottle"],
        55,
        (0.7, 0.2, 0.1),
    ),
    (
        "Books",
        ["Fiction", "Cooking"],
        ["Inkwell", "Page", "Folio"],
        ["mystery novel", "cookbook", "fantasy saga", "poetry collection", "travel guide", "biography"],
        15,
        (0.4, 0.3, 0.3),
    ),
]
ADJ = ["premium", "compact", "classic", "lightweight", "deluxe", "eco", "pro", "essential", "modern", "vintage"]
DEVICES = ("mobile", "desktop", "tablet")


def catalog(n: int, groups: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        top, subs, brands, nouns, price, _ = GROUPS[i % groups]
        noun = rng.choice(nouns)
        out.append(
            {
                "product_id": f"p{i}",
                "title": f"{rng.choice(ADJ).title()} {noun} {rng.choice(['', 'set', 'kit', 'edition', 'plus'])}".strip(),
                "category_path": [top, rng.choice(subs)],
                "brand": rng.choice(brands),
                "price": f"{price * rng.lognormvariate(0, 0.3):.2f}",
                "currency": "EUR",
                "url": f"https://shop.example/p/{i}",
                "image_url": "",
                "in_stock": rng.random() > 0.1,
            }
        )
    return out


class World:
    def __init__(self, products: int, shoppers: int, groups: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.products = products
        self.groups = groups
        self.shoppers = shoppers
        self.by_group = [list(range(g, products, groups)) for g in range(groups)]
        self.device = {}
        for s in range(shoppers):
            weights = GROUPS[s % groups][5]
            self.device[s] = self.rng.choices(DEVICES, weights=weights)[0]

    def group_of(self, shopper: int) -> int:
        return shopper % self.groups

    def event(self, now: str) -> dict[str, Any]:
        rng = self.rng
        s = rng.randrange(self.shoppers)
        g = self.group_of(s) if rng.random() < 0.85 else rng.randrange(self.groups)
        pid = f"p{rng.choice(self.by_group[g])}"
        kind = rng.choices(
            ["product_view", "search", "add_to_cart", "purchase", "page_view"], weights=[60, 15, 12, 5, 8]
        )[0]
        props: dict[str, Any] = {"device": self.device[s]}
        if kind == "product_view":
            props["product_id"] = pid
        elif kind == "search":
            props["query"] = rng.choice(GROUPS[g][3])
        elif kind == "add_to_cart":
            props.update(product_id=pid, quantity=1, price=str(GROUPS[g][4]))
        elif kind == "purchase":
            props.update(
                order_id=str(uuid.uuid4()),
                items=[{"product_id": pid, "quantity": 1, "price": str(GROUPS[g][4])}],
                revenue=str(GROUPS[g][4]),
                currency="EUR",
            )
        else:
            props["url"] = "https://shop.example/"
        return {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "user_id": f"s{s}",
            "timestamp": now,
            "properties": props,
        }


def freshness(plat: Platform, key: str, world: World, *, rate: int, seconds: float) -> dict[str, Any]:
    import httpx
    import psycopg

    tick = 0.05
    per_tick = max(1, int(rate * tick))
    local = threading.local()
    acks: dict[str, float] = {}
    seen: dict[str, float] = {}
    errors: list[str] = []
    sent = [0]
    lock = threading.Lock()

    def client() -> httpx.Client:
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=plat.url, timeout=30, headers={"Authorization": f"Bearer {key}"})
        return local.c

    def send(batch: list[dict[str, Any]], probe: str) -> None:
        try:
            r = client().post("/api/v1/events", json={"events": batch})
            t = time.time()
            if r.status_code != 202 or r.json()["rejected"]:
                errors.append(r.text[:200])
                return
            with lock:
                acks[probe] = t
                sent[0] += len(batch)
        except Exception as exc:  # noqa: BLE001 - recorded and reported
            errors.append(repr(exc))

    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(
            host=str(plat.var_dir / "pgdata"), user="postgres", dbname="adplatform", autocommit=True
        ) as conn:
            while not stop.is_set():
                with lock:
                    pending = [p for p in acks if p not in seen]
                if pending:
                    rows = conn.execute(
                        "SELECT user_key FROM profiles_profile WHERE user_key = ANY(%s)", [pending]
                    ).fetchall()
                    t = time.time()
                    for (u,) in rows:
                        seen[u] = t
                time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    start = time.monotonic()
    n = 0
    with ThreadPoolExecutor(max_workers=16) as pool:
        while time.monotonic() - start < seconds:
            due = start + n * tick
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = datetime.now(UTC).isoformat()
            batch = [world.event(now) for _ in range(per_tick - 1)]
            probe = f"probe-{n}"
            batch.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": "product_view",
                    "user_id": probe,
                    "timestamp": now,
                    "properties": {"product_id": f"p{n % world.products}", "device": "mobile"},
                }
            )
            pool.submit(send, batch, probe)
            n += 1
    elapsed = time.monotonic() - start
    deadline = time.time() + 120
    while time.time() < deadline and len(seen) < len(acks):
        time.sleep(0.1)
    stop.set()
    poller.join()
    lat = [seen[p] - acks[p] for p in acks if p in seen]
    return {
        "events": sent[0],
        "elapsed": elapsed,
        "rate": sent[0] / elapsed,
        "probes": len(acks),
        "observed": len(lat),
        "p50": percentile(lat, 0.5),
        "p99": percentile(lat, 0.99),
        "max": max(lat) if lat else float("nan"),
        "errors": errors[:3],
        "error_count": len(errors),
    }


def wait_product_docs(plat: Platform, timeout: float = 600) -> None:
    """Start the load only once the catalogue's events are projected (steady state)."""
    with plat.connect() as conn:
        deadline = time.time() + timeout
        while time.time() < deadline:
            head = conn.execute("SELECT max(position) FROM eventlog_event WHERE type = 'ProductUpserted'").fetchone()
            cp = conn.execute("SELECT last_position FROM eventlog_checkpoint WHERE name = 'product_docs'").fetchone()
            if head and cp and head[0] is not None and cp[0] >= head[0]:
                return
            time.sleep(0.5)
    raise RuntimeError("product_docs projection did not catch up")


def synthetic(n: int, dim: int, rng: Any, *, hard: bool) -> tuple[Any, Any]:
    """(data, queries), unit vectors in 200 clusters. Default: a 32-d latent mixture embedded
    linearly in `dim` plus small noise (low intrinsic dimension, like learned/text
    embeddings). hard=True: isotropic noise in all `dim` directions (neighbours nearly
    equidistant, the worst case for any graph index)."""
    import numpy as np

    if hard:
        centers = rng.normal(size=(200, dim)).astype(np.float32)
        x = centers[rng.integers(0, 200, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
        noise = 0.3
    else:
        latent = 32
        centers = 2.0 * rng.normal(size=(200, latent)).astype(np.float32)
        z = centers[rng.integers(0, 200, n)] + rng.normal(size=(n, latent)).astype(np.float32)
        w = rng.normal(size=(latent, dim)).astype(np.float32) / np.sqrt(latent)
        x = z @ w + 0.05 * rng.normal(size=(n, dim)).astype(np.float32)
        noise = 0.05
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, noise


def hnsw_bench(n: int, dim: int, queries: int, seed: int, *, hard: bool, efs: tuple[int, ...]) -> dict[str, Any]:
    import numpy as np

    from profiles import vectors

    rng = np.random.default_rng(seed)
    x, noise = synthetic(n, dim, rng, hard=hard)
    version = f"bench-{n}-{'hard' if hard else 'lowdim'}"
    vectors.version_register(kind="item_learned", version=version, dim=dim)
    t = time.monotonic()
    for s in range(0, n, 10_000):
        vectors.vectors_write(
            kind="item_learned", version=version, rows=[(str(i), x[i], "") for i in range(s, min(n, s + 10_000))]
        )
    write_s = time.monotonic() - t
    t = time.monotonic()
    vectors.index_ensure(kind="item_learned", version=version)
    build_s = time.monotonic() - t
    vectors.activate(kind="item_learned", version=version)
    qi = rng.integers(0, n, queries)
    q = x[qi] + noise * rng.normal(size=(queries, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    out: dict[str, Any] = {"n": n, "dim": dim, "write_s": write_s, "build_s": build_s, "ef": {}}
    vectors.nearest(kind="item_learned", vector=q[0], k=10)  # warm the pointer cache and index pages
    for ef in efs:
        lat, rec = [], []
        for i in range(queries):
            t = time.perf_counter()
            got = vectors.nearest(kind="item_learned", vector=q[i], k=10, ef_search=ef)
            lat.append(time.perf_counter() - t)
            rec.append(len({int(k) for k, _ in got} & set(truth[i].tolist())) / 10)
        out["ef"][ef] = {
            "p50_ms": 1000 * percentile(lat, 0.5),
            "p99_ms": 1000 * percentile(lat, 0.99),
            "recall": float(np.mean(rec)),
        }
    exact_lat, exact_rec = [], []
    for i in range(min(queries, 20)):
        t = time.perf_counter()
        got = vectors.nearest(kind="item_learned", vector=q[i], k=10, exact=True)
        exact_lat.append(time.perf_counter() - t)
        exact_rec.append(len({int(k) for k, _ in got} & set(truth[i].tolist())) / 10)
    out["exact_p50_ms"] = 1000 * percentile(exact_lat, 0.5)
    out["exact_recall"] = float(np.mean(exact_rec))
    vectors.versions_cleanup(kind="item_learned", keep_previous=0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--shoppers", type=int, default=20_000)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep var/bench-profiles (default: start from empty)")
    args = ap.parse_args()

    import shutil

    plat = Platform("profiles")
    if not args.keep and plat.var_dir.exists():
        shutil.rmtree(plat.var_dir)
    plat.start()
    results: dict[str, Any] = {}
    try:
        key = plat.manage("create_api_key", "--scopes", "events:write").strip().splitlines()[-1]
        import httpx

        rng = random.Random(args.seed)
        t = time.monotonic()
        products = catalog(args.products, args.groups, rng)
        with httpx.Client(base_url=plat.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as c:
            for s in range(0, len(products), 1000):
                r = c.post("/api/v1/catalog/products", json={"products": products[s : s + 1000]})
                assert r.status_code in (200, 201, 202), r.text[:300]
        print(f"catalog: {len(products)} products in {time.monotonic() - t:.1f}s", flush=True)
        wait_product_docs(plat)
        print(f"product docs projected after {time.monotonic() - t:.1f}s", flush=True)
        world = World(args.products, args.shoppers, args.groups, args.seed)
        results["fresh"] = freshness(plat, key, world, rate=args.rate, seconds=args.seconds)
        print("freshness", results["fresh"], flush=True)

        os.environ.update(plat.env)
        import django

        django.setup()
        from adplatform.eventlog import projections
        from profiles import services
        from profiles.segmentation import adjusted_rand_index
        from profiles.selectors import clear_caches

        for name in ("product_docs", "profiles"):
            projections.catch_up(projections.get_projection(name))
        from profiles.projections import product_text
        from profiles.textmodel import encode

        sample = [product_text(p) for p in products[:2000]]
        encode(sample[:64])  # load the model
        t = time.monotonic()
        encode(sample)
        results["encoder_per_s"] = len(sample) / (time.monotonic() - t)
        marks: dict[str, float] = {}
        t0 = time.monotonic()

        def progress(kind: str, done: int, total: int) -> None:
            if done == total:
                marks[kind] = time.monotonic() - t0

        r = services.embeddings_refresh(progress=progress)
        results["embed"] = {"products": r.products, "users": r.users, "total_s": r.seconds, **marks}
        print("embeddings", results["embed"], flush=True)

        clear_caches()
        seg = services.segments_recompute(seed=args.seed)
        from profiles.models import SegmentMembership

        member = dict(SegmentMembership.objects.filter(user_key__startswith="s").values_list("user_key", "segment_id"))
        keys = sorted(member)
        truth = [world.group_of(int(k[1:])) for k in keys]
        pred = [member[k] for k in keys]
        shuffled = pred[:]
        random.Random(1).shuffle(shuffled)
        results["seg"] = {
            "users": seg.users,
            "k": seg.k,
            "seconds": seg.seconds,
            "ari": adjusted_rand_index(truth, pred),
            "ari_chance": adjusted_rand_index(truth, shuffled),
            "names": [(s.name, s.size) for s in seg.segments],
        }
        seg_k = services.segments_recompute(k=args.groups, seed=args.seed)
        member = dict(SegmentMembership.objects.filter(user_key__startswith="s").values_list("user_key", "segment_id"))
        results["seg"]["ari_k_groups"] = adjusted_rand_index(truth, [member[k] for k in keys])
        results["seg"]["seconds_k_groups"] = seg_k.seconds
        results["seg"]["names_k_groups"] = [(x.name, x.size) for x in seg_k.segments]
        print("segments", results["seg"], flush=True)
        results["hnsw"] = hnsw_bench(args.vectors, 384, args.queries, args.seed, hard=False, efs=(20, 40, 100, 200))
        print("hnsw", results["hnsw"], flush=True)
        results["hnsw_hard"] = hnsw_bench(args.vectors, 384, args.queries, args.seed, hard=True, efs=(100, 400))
        print("hnsw hard", results["hnsw_hard"], flush=True)
    finally:
        plat.stop()
    write_doc(args, results)


def _hnsw_rows(h: dict[str, Any]) -> str:
    return "\n".join(
        f"| {k} | {v['p50_ms']:.2f} ms | {v['p99_ms']:.2f} ms | {v['recall']:.3f} | "
        f"{h['exact_p50_ms'] / v['p50_ms']:.1f}× |"
        for k, v in h["ef"].items()
    )


def write_doc(args: argparse.Namespace, res: dict[str, Any]) -> None:
    f, e, s, h, hh = res["fresh"], res["embed"], res["seg"], res["hnsw"], res["hnsw_hard"]
    prod_s = e.get("product_text", e["total_s"])
    ok = {k: v for k, v in h["ef"].items() if v["recall"] >= 0.95}
    ef = min(ok, key=lambda k: ok[k]["p50_ms"]) if ok else max(h["ef"], key=lambda k: h["ef"][k]["recall"])
    chosen = h["ef"][ef]
    names = "\n".join(f"  - {n} ({size})" for n, size in s["names"])
    names_k = "\n".join(f"  - {n} ({size})" for n, size in s["names_k_groups"])
    body = f"""Machine: {machine()}. Date: {now_iso()}. Command: `make bench-profiles`
(`.venv/bin/python bench/profiles.py --products {args.products} --shoppers {args.shoppers} --rate {args.rate} \\
--seconds {args.seconds:g} --vectors {args.vectors}`). One real platform: gunicorn (2 workers × 2 threads) +
`run_projections` (every registered projection), private embedded Postgres 18 + pgvector; the load generator, the
poller and the other engineers' processes share the same 2 cores.

**Profile freshness** (202 received → the shopper's profile row visible to another connection; one new probe
shopper in every 50 ms batch, 10 ms polling, so figures include up to 10 ms of polling delay):

| sustained load | events sent | probes seen | p50 | p99 | max | target |
| --- | --- | --- | --- | --- | --- | --- |
| {f["rate"]:.0f} events/s for {f["elapsed"]:.0f} s | {f["events"]} | {f["observed"]}/{f["probes"]} | \
{1000 * f["p50"]:.0f} ms | {1000 * f["p99"]:.0f} ms | {1000 * f["max"]:.0f} ms | p99 ≤ 2000 ms |

HTTP errors during the run: {f["error_count"]}.

**Embedding refresh** (`embeddings_refresh`, all-MiniLM-L6-v2 on CPU, torch 2 threads): {e["products"]} product
texts encoded and stored in {prod_s:.0f} s = **{e["products"] / prod_s:.0f} products/s** end to end, measured on
the full {e["products"]} (no extrapolation); the encoder alone on 2,000 of the same titles right before:
{res["encoder_per_s"]:.0f} titles/s (the gap is CPU shared with the still-running platform and other work on the
machine, plus COPY/upsert). Then {e["users"]} shopper content vectors and three HNSW builds: total {e["total_s"]:.0f} s.

**HNSW vs exact**, {h["n"]:,} × {h["dim"]}-d unit vectors in 200 clusters with a 32-d latent structure (like
text/learned embeddings), k = 10, m = 16, ef_construction = 64; write {h["write_s"]:.0f} s, index build
{h["build_s"]:.0f} s (maintenance_work_mem 1 GB); recall against numpy brute force; exact = the same SQL with index
scans off: p50 {h["exact_p50_ms"]:.1f} ms (recall {h["exact_recall"]:.3f}). Latency is the full `vectors.nearest` call
from Python (one round trip).

| ef_search | p50 | p99 | recall@10 | speed vs exact (p50) |
| --- | --- | --- | --- | --- |
{_hnsw_rows(h)}

Fastest setting with recall ≥ 0.95: ef_search = {ef} (recall {chosen["recall"]:.3f},
{h["exact_p50_ms"] / chosen["p50_ms"]:.0f}× exact); the default `PROFILES_HNSW_EF_SEARCH` = 100 keeps margin.
Hard case for comparison (isotropic noise in all 384 directions, neighbours nearly equidistant; exact p50
{hh["exact_p50_ms"]:.1f} ms):

| ef_search | p50 | p99 | recall@10 | speed vs exact (p50) |
| --- | --- | --- | --- | --- |
{_hnsw_rows(hh)}

**Segments vs planted taste groups** ({args.groups} planted groups, {s["users"]} shoppers with a profile from the load
above, 85 % of each shopper's browsing inside their group, group-specific devices and prices):
- k chosen by silhouette = {s["k"]} ({s["seconds"]:.0f} s): adjusted Rand index **{s["ari"]:.3f}**; a shuffled
  assignment (chance) scores {s["ari_chance"]:.3f}. RFM splits some taste groups into buyers and browsers, which
  ARI counts against the 8 planted labels:
{names}
- k = {args.groups} (`PROFILES_SEGMENTS_K={args.groups}`, {s["seconds_k_groups"]:.0f} s): ARI **{s["ari_k_groups"]:.3f}**:
{names_k}
"""
    update_benchmarks_doc("Profiles (bench/profiles)", body)


if __name__ == "__main__":
    main()
