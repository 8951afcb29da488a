"""Shopper segments: k-means (k-means++ seeding, several restarts, k by silhouette) on torch
over each consenting shopper's content embedding, category mix, RFM and device mix; each
cluster is named from what sets it apart ("Outdoor · Tents · high spend · mobile").

Segment keys are slugs of the names, so a recompute that finds the same kind of shoppers
keeps the key campaigns target; segments that disappear are kept inactive (their key is
no longer offered to targeting)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import torch
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import vectors
from .models import Segment, SegmentRun

logger = logging.getLogger(__name__)

MAX_CATEGORIES = 64  # category columns in the feature matrix (most common first)
DEVICES = ("mobile", "desktop", "tablet")
K_RANGE = range(2, 13)
SILHOUETTE_SAMPLE = 3000
W_EMBEDDING, W_CATEGORIES, W_RFM, W_DEVICE = 1.0, 1.0, 0.35, 0.35


@dataclass
class ShopperFeatures:
    keys: list[str]
    matrix: np.ndarray  # (n, d) float32
    categories: list[str]
    category_share: np.ndarray  # (n, c) rows sum to 1 (or 0)
    brands: list[dict[str, float]]
    monetary: np.ndarray
    orders: np.ndarray
    recency_days: np.ndarray
    device_share: np.ndarray  # (n, 3)
    mean_price: np.ndarray  # nan where unknown
    embedding_version: str = ""


@dataclass(frozen=True)
class SegmentSummary:
    key: str
    name: str
    size: int
    description: str


@dataclass(frozen=True)
class SegmentRecomputeResult:
    run_id: int | None
    users: int
    k: int
    segments: tuple[SegmentSummary, ...]
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict)


def load_features() -> ShopperFeatures:
    """Every consenting shopper with at least one event, as a feature row."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT user_key, categories::text, brands::text, devices::text, orders, monetary, "
            "extract(epoch FROM now() - last_event_at) / 86400.0, price_sum, price_weight "
            "FROM profiles_profile WHERE consent AND frequency > 0 ORDER BY user_key"
        )
        rows = cur.fetchall()
    keys = [r[0] for r in rows]
    cats = [orjson.loads(r[1]) for r in rows]
    counts: Counter[str] = Counter()
    for c in cats:
        counts.update(c.keys())
    categories = [c for c, _ in counts.most_common(MAX_CATEGORIES)]
    col = {c: i for i, c in enumerate(categories)}
    n = len(rows)
    share = np.zeros((n, len(categories)), dtype=np.float32)
    for i, c in enumerate(cats):
        for name, score in c.items():
            j = col.get(name)
            if j is not None:
                share[i, j] = score
    totals = share.sum(axis=1, keepdims=True)
    share = np.divide(share, totals, out=np.zeros_like(share), where=totals > 0)
    devices = np.zeros((n, len(DEVICES)), dtype=np.float32)
    for i, r in enumerate(rows):
        d = orjson.loads(r[3])
        total = sum(d.values())
        for j, name in enumerate(DEVICES):
            devices[i, j] = d.get(name, 0) / total if total else 0.0
    orders = np.array([r[4] for r in rows], dtype=np.float64)
    monetary = np.array([float(r[5]) for r in rows], dtype=np.float64)
    recency = np.array([float(r[6] or 0.0) for r in rows], dtype=np.float64)
    mean_price = np.array([r[7] / r[8] if r[8] > 0 else np.nan for r in rows], dtype=np.float64)

    space = vectors.active("user_content")
    emb = np.zeros((n, 0), dtype=np.float32)
    version = ""
    if space is not None:
        version = space.version
        got = vectors.vectors_get(kind="user_content", version=space.version, keys=keys) if keys else {}
        emb = np.zeros((n, space.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            v = got.get(key)
            if v is not None:
                emb[i] = v

    rfm = np.stack([np.log1p(monetary), np.log1p(orders), np.log1p(np.maximum(recency, 0.0))], axis=1) if n else None
    parts = []
    if emb.shape[1]:
        parts.append(W_EMBEDDING * emb)
    if share.shape[1]:
        parts.append(W_CATEGORIES * _l2(share))
    if rfm is not None:
        std = rfm.std(axis=0)
        parts.append((W_RFM * (rfm - rfm.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32))
    parts.append(W_DEVICE * devices)
    matrix = np.concatenate(parts, axis=1).astype(np.float32) if n else np.zeros((0, 1), dtype=np.float32)
    return ShopperFeatures(
        keys=keys,
        matrix=matrix,
        categories=categories,
        category_share=share,
        brands=[orjson.loads(r[2]) for r in rows],
        monetary=monetary,
        orders=orders,
        recency_days=recency,
        device_share=devices,
        mean_price=mean_price,
        embedding_version=version,
    )


def _l2(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def kmeans(
    x: torch.Tensor, k: int, *, seed: int, n_init: int = 3, iters: int = 60
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(labels, centroids, inertia) of the best of `n_init` k-means++ runs."""
    gen = torch.Generator().manual_seed(seed)
    best: tuple[torch.Tensor, torch.Tensor, float] | None = None
    n = x.shape[0]
    for _ in range(n_init):
        first = int(torch.randint(n, (1,), generator=gen))
        centroids = [x[first]]
        d2 = ((x - x[first]) ** 2).sum(1)
        for _ in range(1, k):
            probs = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full((n,), 1.0 / n)
            idx = int(torch.multinomial(probs, 1, generator=gen))
            centroids.append(x[idx])
            d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
        c = torch.stack(centroids)
        labels = torch.zeros(n, dtype=torch.long)
        for _ in range(iters):
            dist = torch.cdist(x, c)
            new_labels = dist.argmin(1)
            if _ > 0 and torch.equal(new_labels, labels):
                break
            labels = new_labels
            sums = torch.zeros_like(c).index_add_(0, labels, x)
            counts = torch.bincount(labels, minlength=k).unsqueeze(1).to(x.dtype)
            empty = counts.squeeze(1) == 0
            c = torch.where(empty.unsqueeze(1), c, sums / counts.clamp(min=1))
        inertia = float((torch.cdist(x, c).min(1).values ** 2).sum())
        if best is None or inertia < best[2]:
            best = (labels, c, inertia)
    assert best is not None
    return best


def silhouette(x: torch.Tensor, labels: torch.Tensor, *, seed: int) -> float:
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=gen)[:SILHOUETTE_SAMPLE]
    xs, ls = x[idx], labels[idx]
    d = torch.cdist(xs, xs)
    k = int(labels.max()) + 1
    onehot = torch.nn.functional.one_hot(ls, k).to(x.dtype)
    sums = d @ onehot
    counts = onehot.sum(0)
    own = counts[ls] - 1
    a = sums.gather(1, ls.unsqueeze(1)).squeeze(1) / own.clamp(min=1)
    other = sums / counts.clamp(min=1)
    other.scatter_(1, ls.unsqueeze(1), float("inf"))
    other[:, counts == 0] = float("inf")
    b = other.min(1).values
    s = torch.where(own > 0, (b - a) / torch.maximum(a, b).clamp(min=1e-12), torch.zeros_like(a))
    return float(s.mean())


def cluster(features: ShopperFeatures, *, k: int | None, seed: int) -> tuple[np.ndarray, int, dict[str, float]]:
    n = features.matrix.shape[0]
    x = torch.from_numpy(features.matrix)
    if k is None or k <= 0:
        scores: dict[str, float] = {}
        best_k, best_s, best_labels = 1, -2.0, torch.zeros(n, dtype=torch.long)
        for cand in K_RANGE:
            if cand >= n:
                break
            labels, _, _ = kmeans(x, cand, seed=seed)
            s = silhouette(x, labels, seed=seed)
            scores[str(cand)] = round(s, 4)
            if s > best_s:
                best_k, best_s, best_labels = cand, s, labels
        return best_labels.numpy(), best_k, scores
    k = max(1, min(k, n))
    labels, _, _ = kmeans(x, k, seed=seed)
    return labels.numpy(), k, {}


BUYER_SHARE_FOR_SPEND = 0.2  # below this share of buyers a segment is named "browsers"


def _spend_band(median_monetary: float, buyer_share: float, tertiles: tuple[float, float]) -> str:
    if buyer_share < BUYER_SHARE_FOR_SPEND:
        return "browsers"
    if median_monetary < tertiles[0]:
        return "low spend"
    return "mid spend" if median_monetary < tertiles[1] else "high spend"


def name_segments(features: ShopperFeatures, labels: np.ndarray) -> list[dict[str, Any]]:
    """Name and describe each cluster from its most distinctive categories (share × lift),
    its spend band (median spend against the spenders' tertiles) and dominant device."""
    n = len(features.keys)
    global_share = features.category_share.mean(axis=0) if n else np.zeros(0)
    spenders = features.monetary[features.monetary > 0]
    tertiles = (
        (float(np.quantile(spenders, 1 / 3)), float(np.quantile(spenders, 2 / 3))) if spenders.size else (0.0, 0.0)
    )
    depth = category_depths()
    out = []
    for c in sorted(set(labels.tolist())):
        mask = labels == c
        size = int(mask.sum())
        share = features.category_share[mask].mean(axis=0) if global_share.size else global_share
        lift = np.divide(share, global_share, out=np.zeros_like(share), where=global_share > 0)
        distinct = share * np.sqrt(np.maximum(lift, 0))
        order = _distinctive(share, distinct, global_share, features.categories, depth)
        cats = [features.categories[i] for i in order]
        brand_totals: Counter[str] = Counter()
        for i in np.flatnonzero(mask):
            brand_totals.update(features.brands[i])
        brands = [b for b, _ in brand_totals.most_common(2)]
        mon = features.monetary[mask]
        buyers = mon[mon > 0]
        spend = _spend_band(float(np.median(buyers)) if buyers.size else 0.0, buyers.size / size, tertiles)
        dev = features.device_share[mask].mean(axis=0)
        top_dev = int(np.argmax(dev)) if dev.sum() > 0 else -1
        device = DEVICES[top_dev] if top_dev >= 0 and dev[top_dev] >= 0.6 * dev.sum() else "multi-device"
        name = " · ".join([*(cats or ["general"]), spend, device])
        recency = float(np.median(features.recency_days[mask]))
        median_spend = float(np.median(buyers)) if buyers.size else 0.0
        description = (
            f"{size} shoppers ({100.0 * size / n:.1f}%). "
            f"Top categories: {', '.join(f'{features.categories[i]} ({100 * share[i]:.0f}%)' for i in order) or '-'}. "
            f"Top brands: {', '.join(brands) or '-'}. "
            f"Buyers: {buyers.size} ({100.0 * buyers.size / size:.0f}%), median spend {median_spend:.2f}. "
            f"Median recency {recency:.1f} days. "
            f"Devices: {', '.join(f'{d} {100 * s:.0f}%' for d, s in zip(DEVICES, dev, strict=True) if s > 0) or '-'}."
        )
        out.append(
            {
                "cluster": c,
                "name": name[:200],
                "size": size,
                "description": description,
                "traits": {
                    "categories": cats,
                    "brands": brands,
                    "spend": spend,
                    "device": device,
                    "median_recency_days": round(recency, 2),
                },
            }
        )
    return out


SAME_MASS = 0.05  # categories within 5% of each other's share are one path (ancestor/descendant)
SECOND_CATEGORY_MIN_SHARE = 0.25


def category_depths() -> dict[str, int]:
    """Deepest position of each category name on any product's path (0 = top level)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT u.c, max(u.i) FROM profiles_product_doc d, unnest(d.category_path) WITH ORDINALITY AS u(c, i) "
            "GROUP BY u.c"
        )
        return {c: int(i) - 1 for c, i in cur.fetchall()}


def _distinctive(
    share: np.ndarray, distinct: np.ndarray, global_share: np.ndarray, names: list[str], depth: dict[str, int]
) -> list[int]:
    """Up to two categories that set a cluster apart: the most distinctive one (the deepest
    of a tie, i.e. the most specific level of one path), then a second only when it is a
    different interest (not the same mass as the first) with a share of its own."""
    ranked = sorted(
        (i for i in range(len(share)) if share[i] > 0),
        key=lambda i: (-round(float(distinct[i]), 6), -depth.get(names[i], 0), float(global_share[i]), names[i]),
    )
    chosen: list[int] = []
    for i in ranked:
        if any(abs(share[i] - share[j]) <= SAME_MASS * share[j] for j in chosen):
            continue
        if chosen and share[i] < SECOND_CATEGORY_MIN_SHARE:
            break
        chosen.append(i)
        if len(chosen) == 2:
            break
    return chosen


def _unique_keys(named: list[dict[str, Any]]) -> list[str]:
    keys, seen = [], Counter[str]()
    for seg in sorted(named, key=lambda s: -s["size"]):  # the largest keeps the plain slug
        base = slugify(seg["name"].replace("·", " "))[:120] or "segment"
        seen[base] += 1
        seg["key"] = base if seen[base] == 1 else f"{base}-{seen[base]}"
    for seg in named:
        keys.append(seg["key"])
    return keys


def recompute(*, k: int | None = None, seed: int = 0) -> SegmentRecomputeResult:
    started = time.monotonic()
    torch.manual_seed(seed)
    features = load_features()
    n = len(features.keys)
    if n == 0:
        return SegmentRecomputeResult(run_id=None, users=0, k=0, segments=(), seconds=time.monotonic() - started)
    labels, chosen_k, scores = cluster(features, k=k if k is not None else settings.PROFILES_SEGMENTS_K, seed=seed)
    named = name_segments(features, labels)
    _unique_keys(named)
    key_of = {seg["cluster"]: seg["key"] for seg in named}
    prices = features.mean_price[~np.isnan(features.mean_price)]
    stats: dict[str, Any] = {
        "silhouette_by_k": scores,
        "price_tertiles": [float(np.quantile(prices, 1 / 3)), float(np.quantile(prices, 2 / 3))]
        if prices.size
        else None,
    }
    now = timezone.now()
    with transaction.atomic():
        run = SegmentRun.objects.create(
            started_at=now, users=n, k=chosen_k, embedding_version=features.embedding_version, stats=stats
        )
        for seg in named:
            Segment.objects.update_or_create(
                key=seg["key"],
                defaults={
                    "name": seg["name"],
                    "description": seg["description"],
                    "size": seg["size"],
                    "active": True,
                    "traits": seg["traits"],
                    "run": run,
                    "updated_at": now,
                },
            )
        Segment.objects.exclude(key__in=list(key_of.values())).update(active=False, size=0, updated_at=now)
        with connection.cursor() as cur:
            cur.execute("DELETE FROM profiles_segment_membership")
            cur.execute(
                "INSERT INTO profiles_segment_membership (user_key, segment_key, distance, run_id) "
                "SELECT u.k, u.s, 0, %s FROM unnest(%s::text[], %s::text[]) AS u(k, s)",
                [run.pk, features.keys, [key_of[int(c)] for c in labels]],
            )
        SegmentRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    from .selectors import clear_caches

    clear_caches()
    return SegmentRecomputeResult(
        run_id=run.pk,
        users=n,
        k=chosen_k,
        segments=tuple(
            SegmentSummary(key=s["key"], name=s["name"], size=s["size"], description=s["description"])
            for s in sorted(named, key=lambda s: -s["size"])
        ),
        seconds=time.monotonic() - started,
        stats=stats,
    )


def adjusted_rand_index(truth: list[Any], pred: list[Any]) -> float:
    """ARI between two labelings (pure, for reporting how well segments recover groups)."""
    n = len(truth)
    if n < 2:
        return 1.0
    pairs = Counter(zip(truth, pred, strict=True))
    a = Counter(truth)
    b = Counter(pred)

    def c2(x: int) -> float:
        return x * (x - 1) / 2

    index = sum(c2(v) for v in pairs.values())
    sa = sum(c2(v) for v in a.values())
    sb = sum(c2(v) for v in b.values())
    expected = sa * sb / c2(n)
    max_index = (sa + sb) / 2
    return 1.0 if max_index == expected else (index - expected) / (max_index - expected)
