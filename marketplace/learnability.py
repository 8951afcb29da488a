"""Learnability check of the ground truth (pure; used by tests and docs): a simple
logistic regression on features observable in generated history against a popularity
baseline and the oracle, all on the same held-out days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ranking.metrics import auc

from .world import PAGE_TYPES, HistoryDay, World


@dataclass(frozen=True)
class LearnabilityReport:
    n_train: int
    n_test: int
    popularity_auc: float
    model_auc: float
    oracle_auc: float


def learnability(world: World, history: list[HistoryDay], *, test_days: int = 4) -> LearnabilityReport:
    from sklearn.linear_model import LogisticRegression

    cutoff = history[-1].day - test_days + 1
    n_leaves = len(world.categories)
    views: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(n_leaves))
    brand_views: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(world.brands)))
    for d in history:
        if d.day >= cutoff:
            break
        for e in d.events:
            if e["type"] == "product_view":
                p = world.product_index(e["properties"]["product_id"])
                views[e["user_id"]][world.product_leaf[p]] += 1
                brand_views[e["user_id"]][world.product_brand[p]] += 1
    train = [x for d in history if d.day < cutoff for x in d.exposures]
    test = [x for d in history if d.day >= cutoff for x in d.exposures]
    imps = np.zeros(len(world.creatives))
    clicks = np.zeros(len(world.creatives))
    for x in train:
        imps[x.creative_idx] += 1
        clicks[x.creative_idx] += x.clicked
    prior = clicks.sum() / max(imps.sum(), 1)
    ctr = (clicks + 10 * prior) / (imps + 10)

    def features(xs: list) -> np.ndarray:
        rows = []
        for x in xs:
            uid = world.shoppers[x.user_idx].user_id
            v = views.get(uid)
            bv = brand_views.get(uid)
            p = int(world.creative_product[x.creative_idx])
            leaf = int(world.product_leaf[p])
            total = float(v.sum()) if v is not None else 0.0
            leaf_share = (v[leaf] + 0.1) / (total + 1.0) if v is not None else 0.1
            top_share = (
                (v[world.leaf_top == world.leaf_top[leaf]].sum() + 0.1) / (total + 1.0) if v is not None else 0.1
            )
            brand_share = (bv[world.product_brand[p]] + 0.1) / (total + 1.0) if bv is not None else 0.1
            pt = np.zeros(len(PAGE_TYPES))
            pt[PAGE_TYPES.index(x.page_type)] = 1
            rows.append(
                [
                    np.log(leaf_share),
                    np.log(top_share),
                    np.log(brand_share),
                    np.log(x.position),
                    float(x.context_leaf == leaf),
                    np.log(ctr[x.creative_idx]),
                    float(world.product_price_rel[p]),
                    *pt,
                ]
            )
        return np.array(rows)

    y_train = np.array([x.clicked for x in train])
    y_test = np.array([x.clicked for x in test])
    model = LogisticRegression(max_iter=1000)
    model.fit(features(train), y_train)
    scores = model.predict_proba(features(test))[:, 1]
    return LearnabilityReport(
        n_train=len(train),
        n_test=len(test),
        popularity_auc=auc(y_test, ctr[[x.creative_idx for x in test]]),
        model_auc=auc(y_test, scores),
        oracle_auc=auc(y_test, np.array([x.p_click for x in test])),
    )
