"""Serving follows the champion pointer: a running web process scores with the newly
promoted model without a restart."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from ranking import selectors, services

from ..conftest import auth
from .conftest import Seeded

pytestmark = pytest.mark.django_db(transaction=True)


def _candidates(s: Seeded, n: int) -> list[dict]:
    w = s.world
    out = []
    for ci in range(n):
        ci %= len(w.creatives)
        p = w.products[int(w.creative_product[ci])]
        out.append(
            {
                "creative_id": s.creative_ids[ci],
                "campaign_id": 1,
                "advertiser_id": 1,
                "product_id": p.product_id,
                "category_path": list(p.category_path),
                "brand": p.brand,
                "price": float(p.price),
            }
        )
    return out


def test_a_newly_promoted_model_is_served_by_the_running_web_process(
    seeded: Seeded, http: httpx.Client, make_key
) -> None:
    key = make_key("ads:rank")
    body = {
        "user_id": seeded.world.shoppers[0].user_id,
        "context": {"page_type": "category", "category_id": seeded.world.categories[0][1]},
        "candidates": _candidates(seeded, 5),
    }
    # given nothing promoted: the web process serves the prior
    assert http.get("/api/v1/models/champion", headers=auth(key)).json() == {"model_version": "prior-0"}
    # when a first model is promoted, the running server picks it up
    first = services.model_train(kind="popularity")
    r = http.post("/api/v1/models/score", json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == first.version
    before = [s["p_click"] for s in r.json()["scores"]]
    # and when a better model replaces it, the same process serves the new one (no restart)
    second = services.model_train(kind="din_esmm")
    assert second.promoted
    r = http.post("/api/v1/models/score", json=body, headers=auth(key))
    assert r.json()["model_version"] == second.version
    after = [s["p_click"] for s in r.json()["scores"]]
    assert after != before
    assert all(0.0 < p < 1.0 for p in after)
    assert [s["creative_id"] for s in r.json()["scores"]] == [c["creative_id"] for c in body["candidates"]]


def test_scoring_50_candidates_is_batched_and_fast(seeded: Seeded) -> None:
    # given a promoted click model loaded in this process
    services.model_train(kind="din_esmm")
    scorer = selectors.champion_scorer()
    assert isinstance(scorer, selectors.ModelScorer)
    from profiles import selectors as profiles
    from ranking.selectors import CandidateItem, ScoringRequest

    cands = [
        CandidateItem(c["creative_id"], 1, 1, c["product_id"], tuple(c["category_path"]), c["brand"], c["price"])
        for c in _candidates(seeded, 50)
    ]
    user = seeded.world.shoppers[1].user_id
    request = ScoringRequest(
        user_id=user,
        profile=profiles.profile_get(user_id=user),
        context={"page_type": "home", "hour": 12},
        candidates=cands,
    )
    scorer.score(request)  # warm (catalog facts of the recent products cached)
    # when 50 candidates are scored 50 times
    t0 = time.perf_counter()
    for _ in range(50):
        batch = scorer.score(request)
    per_call_ms = (time.perf_counter() - t0) / 50 * 1000
    # then one batch holds all 50, with the logged features, well within a web request budget
    assert batch.p_click.shape == (50,) and len(batch.feature_columns["creative"]) == 50
    assert batch.feature_columns["creative"][0] == str(cands[0].creative_id)
    # and the logged features, read back as training reads them (JSON, merged with the
    # shared part), encode to exactly the arrays the model scored
    from adplatform.eventlog.services import to_json
    from ranking.features import encode, encode_parts, request_feature_parts

    logged = json.loads(to_json(batch.feature_columns))
    rows = [{**batch.shared_features, **{k: col[i] for k, col in logged.items()}} for i in range(50)]
    spec = scorer.model.spec
    served = encode_parts(request_feature_parts(request, products=selectors._recent_product_facts(request)), spec)
    trained = encode(rows, spec)
    assert np.array_equal(trained.sparse, served.sparse) and np.array_equal(trained.dense, served.dense)
    assert np.array_equal(trained.seq_items, served.seq_items)
    assert per_call_ms < 25  # the < 2 ms target is measured in bench/train.py on a quiet box
