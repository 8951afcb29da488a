"""Offline evaluation of retrieval on held-out next-session queries: recall@K and NDCG@K
(ranking.metrics) for the two-tower model, co-visitation and popularity, over the same
queries and the full item corpus (nothing is excluded, not even items the shopper has
already bought: the world's shoppers re-view and re-buy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ranking.metrics import mean_ignoring_nan, ndcg_at_k, recall_at_k

from .covisitation import CoVisitation
from .dataset import Query

KS = (10, 50)


def ranking_metrics(
    queries: Sequence[Query], ranked: Sequence[Sequence[str]], ks: Sequence[int] = KS
) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = mean_ignoring_nan(
            [recall_at_k(q.relevant, r, k) for q, r in zip(queries, ranked, strict=True)]
        )
        out[f"ndcg@{k}"] = mean_ignoring_nan(
            [ndcg_at_k(q.relevant, r, k) for q, r in zip(queries, ranked, strict=True)]
        )
    return out


def top_k_by_vectors(
    users: np.ndarray, items: np.ndarray, item_ids: Sequence[str], k: int, *, batch: int = 1024
) -> list[list[str]]:
    """Exact cosine top-k (the vectors are unit length): what the HNSW index approximates."""
    out: list[list[str]] = []
    k = min(k, len(item_ids))
    for start in range(0, len(users), batch):
        s = users[start : start + batch] @ items.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        rows = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-rows, axis=1, kind="stable")
        for r in np.take_along_axis(part, order, axis=1):
            out.append([item_ids[i] for i in r])
    return out


def evaluate_all(
    queries: Sequence[Query],
    *,
    two_tower: Callable[[int], list[list[str]]] | None,
    covisitation: CoVisitation,
    baselines: dict[str, CoVisitation] | None = None,
    ks: Sequence[int] = KS,
) -> dict[str, float]:
    """Flat metrics dict: `two_tower.recall@50`, `covisitation.ndcg@10`, `popularity.…`,
    plus `queries` (and `<name>.…` for each extra co-visitation variant in `baselines`)."""
    kmax = max(ks)
    ranked: dict[str, list[list[str]]] = {
        "covisitation": [covisitation.recommend(q.recent, kmax) for q in queries],
        "popularity": [list(covisitation.popular[:kmax]) for _ in queries],
    }
    for name, cv in (baselines or {}).items():
        ranked[name] = [cv.recommend(q.recent, kmax) for q in queries]
    if two_tower is not None:
        ranked["two_tower"] = two_tower(kmax)
    metrics: dict[str, float] = {"queries": float(len(queries))}
    for name, r in ranked.items():
        for key, value in ranking_metrics(queries, r, ks).items():
            metrics[f"{name}.{key}"] = value
    return metrics
