"""bench/rank: /api/v1/rank under open-loop load on a full-size world, next to the
in-process floor for the same requests.

    make bench-rank              (or: .venv/bin/python bench/rank.py --rate 200 --duration 60)

World: marketplace preset "full" (100k shoppers, 50k products, 500 advertisers, 1,000
campaigns, 10k creatives), seeded once into a private embedded Postgres under
var/bench-rank (kept between runs; `--reseed` starts over):

- catalogue, advertisers, campaigns, placements and creatives through the services
  (creatives auto-approved);
- 3 product views per shopper (300k behaviour events) through `events_ingest`, plus one
  generated day of the world's history (~200k behaviour events and ~320k ad exposures
  with the world's ground-truth clicks, `marketplace.seeding.history_import`), folded by
  the real profiles projection; the champion is then trained on that history
  (`ranking.services.model_train`, din_esmm), so /rank scores with a trained model;
- BENCH SHORTCUT: text vectors are synthetic, not MiniLM (which embeds ~500 texts/s on
  this box: 60k products + creatives would take minutes). Each leaf category gets a
  random direction; a product's vector is its leaf's direction plus noise, a creative's
  its product's plus noise; a shopper's content vector is the mean of the products they
  viewed, stored with the profile's freshness hash exactly as `embeddings_refresh` stores
  it. They are written through `profiles.vectors` (same tables, same HNSW index) — only
  the numbers differ from MiniLM's.

Server: gunicorn, 2 workers × 1 request thread (one per core: a second request thread per
worker contends for the GIL with the first and the decision writer; at 100 req/s it cost 1–2
ms more CPU per request and doubled p95, docs/benchmarks/rank.md 2026-12-08), plus the
projection consumer; the load generator runs on the same 2 cores. A warm-up phase first
(caches, the text model for search queries), then the measured phase. The floor replays a sample of the same
requests in-process: one ANN query with the shopper's vector + one batched scorer call on
the candidates that decision considered.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Platform, machine, now_iso, percentile, update_benchmarks_doc  # noqa: E402
from bench.loadgen import run_open_loop  # noqa: E402

PLACEMENTS = {  # key: (page type, slots)
    "home_top": ("home", 2),
    "category_side": ("category", 3),
    "product_below": ("product", 2),
    "search_top": ("search", 2),
    "cart_below": ("cart", 2),
}
VECTOR_VERSION = "bench-synthetic-1"
DIM = 384


def _django(plat: Platform) -> None:
    os.environ.update(plat.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "adplatform.settings.local"
    import django

    django.setup()


def seed(world: Any, log: Any) -> None:
    import numpy as np
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from adplatform.eventlog import projections
    from behaviour.services import events_ingest
    from campaigns import services as campaigns
    from catalog.services import products_upsert
    from marketplace.seeding import history_import
    from marketplace.services import world_product_inputs
    from marketplace.world import build_world
    from profiles import vectors
    from ranking.services import model_train

    settings.AUTO_APPROVE_CREATIVES = True
    t0 = time.perf_counter()
    products = world_product_inputs(world)
    for i in range(0, len(products), 2000):
        products_upsert(products=products[i : i + 2000], actor="bench")
    log(f"products {len(products)} in {time.perf_counter() - t0:.0f}s")
    for key, (page, slots) in PLACEMENTS.items():
        campaigns.placement_upsert(
            spec={"key": key, "page_types": [page], "slots": slots, "floor_cpm": Decimal("0.50")}, actor="bench"
        )
    adv_ids = {
        a.key: campaigns.advertiser_create(name=a.name, currency="EUR", timezone_name="UTC", actor="bench")
        for a in world.advertisers
    }
    now = timezone.now()
    camp_ids = {}
    for i, c in enumerate(world.campaigns):
        camp_ids[c.key] = campaigns.campaign_create(
            advertiser_id=adv_ids[c.advertiser],
            actor="bench",
            status="active",
            spec={
                "name": c.name,
                "objective": c.objective,
                "bid_model": c.bid_model,
                "bid": Decimal(c.bid),
                # budgets ×1000: nothing is billed in this bench, but no campaign should run dry
                "daily_budget": Decimal(c.daily_budget) * 1000,
                "total_budget": Decimal(c.total_budget) * 1000,
                "start": now - timedelta(days=1),
                "end": None,
                "timezone": "UTC",
                "dayparts": [],
                "pacing": "even" if i % 2 else "asap",
                "frequency_caps": [{"scope": "campaign", "max": 20, "window_seconds": 3600}] if i % 3 == 0 else [],
                "targeting": c.targeting,
            },  # fmt: skip
        )
    log(f"advertisers + campaigns in {time.perf_counter() - t0:.0f}s")
    creative_ids = []
    for n, cr in enumerate(world.creatives):
        creative_ids.append(
            campaigns.creative_create(
                advertiser_id=adv_ids[world.campaigns[int(world.creative_campaign[n])].advertiser],
                campaign_id=camp_ids[cr.campaign],
                actor="bench",
                spec={
                    "headline": cr.headline,
                    "body": cr.body,
                    "image_url": cr.image_url,
                    "landing_url": cr.landing_url,
                    "product_id": cr.product_id,
                    "variants": list(cr.variants),
                },  # fmt: skip
            )
        )
        if n % 2000 == 0:
            log(f"creatives {n}/{len(world.creatives)} ({time.perf_counter() - t0:.0f}s)")
    # behaviour: 3 product views per shopper in their favourite leaf
    rng = np.random.default_rng(11)
    by_leaf: dict[int, list[int]] = {}
    for idx, leaf in enumerate(world.product_leaf.tolist()):
        by_leaf.setdefault(int(leaf), []).append(idx)
    fav = np.argmax(world.user_leaf_aff, axis=1)
    viewed: dict[str, list[int]] = {}
    events = []
    base = now - timedelta(days=2)
    for u, shopper in enumerate(world.shoppers):
        pool = by_leaf[int(fav[u])]
        picks = [pool[int(rng.integers(len(pool)))] for _ in range(3)]
        viewed[shopper.user_id] = picks
        for k, p in enumerate(picks):
            events.append({
                "event_id": f"{u:08x}-0000-4000-8000-{k:012x}", "type": "product_view", "user_id": shopper.user_id,
                "timestamp": (base + timedelta(seconds=u + k)).isoformat(),
                "properties": {"product_id": world.products[p].product_id, "device": shopper.device},
            })  # fmt: skip
    for i in range(0, len(events), 1000):
        events_ingest(raw_events=events[i : i + 1000], source="bench")
    log(f"behaviour events {len(events)} ({time.perf_counter() - t0:.0f}s)")
    # ad history: one generated day of the world's shoppers (their sessions, and the ads a
    # random/contextual logging policy showed them, clicked by the world's ground truth),
    # so the champion is a model trained in this world, not the prior
    day0 = (now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    accepted, _, exposures = history_import(
        build_world(replace(world.cfg, start=day0)),
        name="bench-rank",
        campaign_ids=camp_ids,
        creative_ids={cr.key: cid for cr, cid in zip(world.creatives, creative_ids, strict=True)},
        campaign_advertisers={c.key: adv_ids[c.advertiser] for c in world.campaigns},
        days=1,
    )
    log(f"ad history: {accepted} behaviour events, {exposures} exposures ({time.perf_counter() - t0:.0f}s)")
    for name in ("product_docs", "profiles"):
        projections.catch_up(projections.get_projection(name))
    log(f"profiles folded ({time.perf_counter() - t0:.0f}s)")
    # synthetic text space (bench shortcut, see the module docstring)
    leaf_dir = rng.normal(size=(len(world.categories), DIM)).astype(np.float32)
    pvec = leaf_dir[world.product_leaf] + 0.6 * rng.normal(size=(len(world.products), DIM)).astype(np.float32)
    pvec /= np.linalg.norm(pvec, axis=1, keepdims=True)
    cvec = pvec[world.creative_product] + 0.3 * rng.normal(size=(len(world.creatives), DIM)).astype(np.float32)
    for kind in ("product_text", "creative_text", "user_content"):
        vectors.version_register(kind=kind, version=VECTOR_VERSION, dim=DIM, model="bench-synthetic")
    vectors.vectors_write(kind="product_text", version=VECTOR_VERSION,
                          rows=((p.product_id, pvec[i], "bench") for i, p in enumerate(world.products)))  # fmt: skip
    vectors.vectors_write(kind="creative_text", version=VECTOR_VERSION,
                          rows=((str(cid), cvec[i], "bench") for i, cid in enumerate(creative_ids)))  # fmt: skip
    with connection.cursor() as cur:
        cur.execute("SELECT user_key, updated_at FROM profiles_profile")
        fresh = {k: vectors.profile_hash(t) for k, t in cur.fetchall()}
    vectors.vectors_write(
        kind="user_content", version=VECTOR_VERSION,
        rows=((uid, pvec[ps].mean(axis=0), fresh[uid]) for uid, ps in viewed.items() if uid in fresh),
    )  # fmt: skip
    vectors.index_ensure(kind="creative_text", version=VECTOR_VERSION)
    for kind in ("product_text", "creative_text", "user_content"):
        vectors.activate(kind=kind, version=VECTOR_VERSION)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    log(f"vectors + HNSW ({time.perf_counter() - t0:.0f}s)")
    trained = model_train(progress=lambda m: log(f"train: {m}"))
    log(f"champion {trained.version}: test AUC {trained.metrics.get('auc')}, promoted {trained.promoted} "
        f"({time.perf_counter() - t0:.0f}s)")  # fmt: skip


def make_requests(world: Any, n: int, seed_: int) -> list[dict[str, Any]]:
    rng = random.Random(seed_)
    keys = list(PLACEMENTS)
    out = []
    for _ in range(n):
        placement = rng.choice(keys)
        page, slots = PLACEMENTS[placement]
        u = rng.randrange(len(world.shoppers))
        shopper = world.shoppers[u]
        user = shopper.user_id if rng.random() < 0.9 else f"new-{rng.randrange(10**9)}"
        ctx: dict[str, Any] = {"page_type": page, "device": shopper.device, "geo": shopper.geo}
        leaf = world.categories[rng.randrange(len(world.categories))]
        if page == "category":
            ctx["category_id"] = leaf[1]
        elif page == "product":
            ctx["product_id"] = world.products[rng.randrange(len(world.products))].product_id
        elif page == "search":
            ctx["query"] = leaf[1].lower()
        out.append({"user_id": user, "placement": placement, "limit": slots, "context": ctx})
    return out


def floor_and_profile(reqs: list[dict[str, Any]], request_ids: dict[int, str], sample: int) -> dict[str, Any]:
    """In-process: the floor (one ANN query + one batched scorer call per request, for the
    candidates its decision considered) and a cProfile of rank_decide on the same requests."""
    from django.conf import settings

    from adplatform.eventlog.models import Event
    from delivery import candidates, state
    from delivery.services import RankRequest, rank_decide
    from profiles import selectors as profiles
    from ranking import selectors as ranking
    from ranking.events import decision_candidates
    from ranking.selectors import ScoringRequest

    ids = list(request_ids.items())[:sample]
    decisions = {
        e.data["request_id"]: e.data
        for e in Event.objects.filter(type="AdDecisionMade", stream__in=[f"decision:{r}" for _, r in ids])
    }
    from django.utils import timezone

    snap = state.snapshot(timezone.now())
    scorer = ranking.champion_scorer()
    floors, n_cands = [], []
    candidates.warm_text_model(wait=True)
    for i, rid in ids:
        d = decisions.get(rid)
        if d is None:
            continue
        req = reqs[i]
        profile = profiles.profile_get(user_id=req["user_id"])
        personal = profile if profile is not None and profile.consent else None
        got = profiles.user_vector(user_id=req["user_id"]) if personal else None
        vec = got[1] if got else profiles.text_vector(text=req["context"].get("query") or "")
        items = [snap.structure.creatives[c["creative_id"]].item for c in decision_candidates(d)
                 if c.get("eligible") and c["creative_id"] in snap.structure.creatives]  # fmt: skip
        n_cands.append(len(items))
        sreq = ScoringRequest(user_id=req["user_id"], profile=personal, context=req["context"], candidates=items)
        t = time.perf_counter()
        if vec is not None:
            profiles.nearest_creatives(vector=vec, k=settings.DELIVERY_ANN_K)
        if items:
            scorer.score(sreq)
        floors.append(time.perf_counter() - t)
    prof = cProfile.Profile()
    rank_reqs = [
        RankRequest(
            user_id=r["user_id"],
            placement=r["placement"],
            page_type=r["context"]["page_type"],
            limit=r["limit"],
            category_id=r["context"].get("category_id"),
            product_id=r["context"].get("product_id"),
            query=r["context"].get("query"),
            device=r["context"].get("device"),
            geo=r["context"].get("geo"),
        )  # fmt: skip
        for r in reqs[:400]
    ]
    for r in rank_reqs[:50]:
        rank_decide(request=r)
    inproc = []
    prof.enable()
    for r in rank_reqs[50:]:
        t = time.perf_counter()
        rank_decide(request=r)
        inproc.append(time.perf_counter() - t)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(40)
    (ROOT / "var" / "bench-rank-profile.txt").write_text(out.getvalue())
    return {
        "floor_p50_ms": round(percentile(floors, 0.5) * 1000, 2),
        "floor_p99_ms": round(percentile(floors, 0.99) * 1000, 2),
        "floor_requests": len(floors),
        "candidates_per_decision_p50": percentile([float(x) for x in n_cands], 0.5),
        "inprocess_rank_decide_p50_ms_profiled": round(percentile(inproc, 0.5) * 1000, 2),
        "scorer": scorer.version,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=20.0)
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-projections", action="store_true")
    ap.add_argument("--reseed", action="store_true")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()

    from marketplace.world import build_world, preset

    world = build_world(preset("full"))
    plat = Platform("rank", web_workers=args.web_workers, threads=args.threads, projections=not args.no_projections)
    marker = plat.var_dir / "seeded-v2"  # v2: with ad history and a trained champion
    if args.reseed and plat.var_dir.exists():
        import shutil

        shutil.rmtree(plat.var_dir)
    plat.manage("migrate", "--noinput")
    _django(plat)
    if not marker.exists():
        seed(world, lambda m: print(f"[seed] {m}", flush=True))
        marker.write_text(now_iso())
    plat.start()
    try:
        key = plat.manage("create_api_key", "--scopes", "ads:rank").strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {key}"}
        warm = make_requests(world, int(args.warmup * args.rate / 2), seed_=1)
        run_open_loop(url=plat.url, path="/api/v1/rank", make_body=lambda i: json.dumps(warm[i]).encode(),
                      rate=args.rate / 2, duration=args.warmup, headers=headers)  # fmt: skip
        reqs = make_requests(world, int(args.duration * args.rate), seed_=2)
        request_ids: dict[int, str] = {}
        ads_shown: Counter[int] = Counter()

        def on_response(i: int, status: int, body: bytes) -> None:
            if status == 200:
                data = json.loads(body)
                request_ids[i] = data["request_id"]
                ads_shown[len(data["ads"])] += 1

        res = run_open_loop(url=plat.url, path="/api/v1/rank", make_body=lambda i: json.dumps(reqs[i]).encode(),
                            rate=args.rate, duration=args.duration, headers=headers, connections=64,
                            on_response=on_response)  # fmt: skip
    finally:
        plat.stop()
    floor = floor_and_profile(reqs, request_ids, sample=1500)
    summary = res.summary()
    result = {**summary, **floor, "ads_per_response": dict(sorted(ads_shown.items())),
              "p50_over_floor": round(summary["p50_ms"] / floor["floor_p50_ms"], 2) if floor["floor_p50_ms"] else None,
              "first_errors": res.first_errors}  # fmt: skip
    print(json.dumps(result, indent=2))
    if not args.no_doc:
        ok = summary["p99_ms"] <= 25 and res.errors == 0 and (result["p50_over_floor"] or 99) <= 2
        update_benchmarks_doc(
            "Ranking latency (bench/rank)",
            f"""Command: `make bench-rank` (`.venv/bin/python bench/rank.py --rate {args.rate:g} --duration {args.duration:g}`); details and profile in docs/benchmarks/rank.md.
Machine: {machine()}; {now_iso()}; shared with other work. World: preset full (100k shoppers, 10k creatives, 1,000 campaigns), scorer `{floor["scorer"]}`.
Server: gunicorn {args.web_workers}×{args.threads}{"" if args.no_projections else " + projection consumer"}, load generator on the same machine.

| metric | value |
| --- | --- |
| open-loop rate / duration | {args.rate:g} req/s / {args.duration:g} s |
| completed / errors (rate) | {res.completed} / {res.errors} ({res.error_rate:.4f}) |
| p50 / p95 / p99 / max | {summary["p50_ms"]} / {summary["p95_ms"]} / {summary["p99_ms"]} / {summary["max_ms"]} ms |
| in-process floor p50 / p99 (one ANN query + one batched scorer call, same requests) | {floor["floor_p50_ms"]} / {floor["floor_p99_ms"]} ms |
| p50 ÷ floor p50 | {result["p50_over_floor"]} |
| targets (p99 ≤ 25 ms, zero errors, p50 ≤ 2× floor) | {"met" if ok else "NOT met"} |
""",
        )


if __name__ == "__main__":
    main()
