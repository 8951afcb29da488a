"""Embeddings in pgvector: MiniLM refresh (idempotent, versioned, one pointer), cold-start
content vectors, HNSW use (EXPLAIN) and filtered queries that still return k, learned
vectors of another dimension."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.db import connection

from adplatform.eventlog import projections
from campaigns import services as campaigns
from profiles import services, vectors
from profiles.models import Embedding, EmbeddingSpace, EmbeddingVersion
from profiles.selectors import (
    nearest_creatives,
    nearest_creatives_exact,
    nearest_products,
    profile_get,
    serving_profile,
    text_vector,
    user_vector,
)

from ..campaigns.conftest import campaign_spec, creative_spec
from .conftest import apply_profiles, ev, ingest, product, seed_catalog

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    vectors.clear_cache()
    yield
    vectors.clear_cache()


def _creative(advertiser: int, campaign: int, headline: str, body: str) -> int:
    cid = campaigns.creative_create(
        advertiser_id=advertiser,
        campaign_id=campaign,
        spec=creative_spec(headline=headline, body=body, variants=[]),
        actor="test",
    )
    campaigns.creative_review(creative_id=cid, decision="approve", actor="test")
    return cid


def test_refresh_encodes_texts_once_serves_creatives_and_cold_start_users() -> None:
    # given products, two approved creatives and a shopper with a single product view
    seed_catalog(
        product("tent-1", ["Sports", "Outdoor", "Tents"], "Trek", "200", title="Two person camping tent"),
        product("mug-1", ["Home", "Kitchen"], "Cozy", "10", title="Ceramic coffee mug"),
        product("boot-1", ["Sports", "Outdoor", "Shoes"], "Trek", "120", title="Waterproof hiking boots"),
    )
    adv = campaigns.advertiser_create(name="Acme", currency="EUR", timezone_name="UTC", actor="test")
    camp = campaigns.campaign_create(advertiser_id=adv, spec=campaign_spec(), actor="test")
    camping = _creative(adv, camp, "Sleep under the stars", "Camping tents for every trail")
    coffee = _creative(adv, camp, "Better coffee mornings", "Mugs and espresso cups")
    ingest(ev("product_view", datetime.now(UTC) - timedelta(minutes=5), product_id="tent-1"))
    apply_profiles()
    projections.catch_up(projections.get_projection("product_docs"))
    # when the refresh runs
    first = services.embeddings_refresh()
    # then every text is encoded once, the version is active and indexed
    assert (first.products, first.creatives, first.users, first.activated) == (3, 2, 1, True)
    assert EmbeddingSpace.objects.get(kind="creative_text").active_version == first.version
    assert set(EmbeddingVersion.objects.values_list("index_name", flat=True)) == {
        vectors.index_name(k, first.version) for k in ("product_text", "creative_text", "user_content")
    }
    # and a query text finds the matching creative first
    hits = nearest_creatives(vector=text_vector(text="tent for camping trips"), k=2)
    assert [c for c, _ in hits] == [camping, coffee]
    assert 0.0 <= hits[0][1] < hits[1][1]
    # and the shopper's content vector equals their only product's vector (cold start)
    got = user_vector(user_id="u-1")
    assert got is not None and got[0] == f"user_content:{first.version}"
    tent = vectors.vectors_get(kind="product_text", version=first.version, keys=["tent-1"])["tent-1"]
    assert float(got[1] @ tent) == pytest.approx(1.0, abs=1e-5)
    _assert_serving_profile_matches("u-1")
    _assert_serving_profile_matches("nobody")
    # when nothing changed, a second run encodes nothing
    second = services.embeddings_refresh()
    assert (second.products, second.creatives, second.users, second.activated) == (0, 0, 0, False)
    # (a newer event makes the stored vector stale: computed from the profile instead)
    ingest(ev("product_view", datetime.now(UTC) - timedelta(minutes=1), product_id="boot-1"))
    apply_profiles()
    _assert_serving_profile_matches("u-1")
    # when a creative is rejected it leaves the served set
    campaigns.creative_review(creative_id=coffee, decision="reject", reason="test", actor="test")
    third = services.embeddings_refresh()
    assert third.creatives_removed == 1
    assert [c for c, _ in nearest_creatives(vector=text_vector(text="coffee"), k=5)] == [camping]


def _assert_serving_profile_matches(user_id: str) -> None:
    """The /rank one-statement read answers what profile_get + user_vector answer."""
    profile, got = serving_profile(user_id=user_id)
    expected = profile_get(user_id=user_id)
    assert (profile is None) == (expected is None)
    if profile is not None and expected is not None:
        for f in ("consent", "segment", "segment_name", "embedding_version", "recent_products", "cart", "updated_at"):
            assert getattr(profile, f) == getattr(expected, f), f
        assert profile.categories == pytest.approx(expected.categories, rel=1e-6)
    want = user_vector(user_id=user_id) if expected is not None and expected.consent else None
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        assert got[0] == want[0]
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert serving_profile(user_id=user_id, vector=False)[1] is None


def _random_unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    centers = rng.normal(size=(20, dim))
    x = centers[rng.integers(0, 20, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _seed_space(kind: str, version: str, n: int, dim: int = 384) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = _random_unit(rng, n, dim)
    vectors.version_register(kind=kind, version=version, dim=dim)
    vectors.vectors_write(kind=kind, version=version, rows=[(str(i + 1), x[i], "") for i in range(n)])
    vectors.index_ensure(kind=kind, version=version)
    vectors.activate(kind=kind, version=version)
    with connection.cursor() as cur:
        cur.execute("ANALYZE profiles_embedding")
    return x


def test_nearest_creatives_uses_hnsw_and_filtered_queries_return_k() -> None:
    # given 3,000 creative vectors in an indexed, active version
    x = _seed_space("creative_text", "test-v1", 3000)
    space = vectors.active("creative_text")
    assert space is not None
    # when the planner is asked how it runs the serving query
    query = vectors.nearest_sql(space).replace("{extra}", "").split("; ")[-1]
    lit = vectors._literal(x[0])
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + query, [lit, "creative_text", "test-v1", lit, 10])
        plan = "\n".join(r[0] for r in cur.fetchall())
    # then it is an index scan on this version's HNSW index
    assert f"Index Scan using {vectors.index_name('creative_text', 'test-v1')}" in plan
    hits = nearest_creatives(vector=x[0], k=10)
    assert len(hits) == 10 and hits[0] == (1, pytest.approx(0.0, abs=1e-5))
    # and a query restricted to 1 in 30 creatives still returns k, the exact top k
    allowed = list(range(1, 3001, 30))
    filtered = nearest_creatives(vector=x[5], k=10, creative_ids=allowed)
    exact = sorted(allowed, key=lambda c: -float(x[c - 1] @ x[5]))[:10]
    assert len(filtered) == 10
    assert len({c for c, _ in filtered} & set(exact)) >= 9
    assert nearest_creatives(vector=x[5], k=10, creative_ids=[]) == []


def test_in_memory_replica_is_exact_filtered_fresh_and_bounded(settings: Any) -> None:
    # given 2,000 creative vectors in an active version
    x = _seed_space("creative_text", "test-mem", 2000)
    q = x[7] + 0.3 * x[1500]
    q = q / np.linalg.norm(q)
    # when the serving replica answers
    got = nearest_creatives_exact(vector=q, k=15)
    # then it is the exact top 15 by cosine, distances as pgvector's exact scan gives them
    assert got is not None
    brute = sorted(range(1, 2001), key=lambda c: (-float(x[c - 1] @ q), c))[:15]
    assert [c for c, _ in got] == brute
    exact_sql = vectors.nearest(kind="creative_text", vector=q, k=15, exact=True)
    assert [d for _, d in got] == pytest.approx([d for _, d in exact_sql], abs=1e-5)
    # and a filter (any container: only membership is asked) applies to every row
    allowed = set(range(1, 2001, 97))
    filtered = nearest_creatives_exact(vector=q, k=5, creative_ids=allowed)
    assert filtered is not None
    assert [c for c, _ in filtered] == sorted(allowed, key=lambda c: (-float(x[c - 1] @ q), c))[:5]
    assert nearest_creatives_exact(vector=q, k=5, creative_ids=set()) == []
    # when a vector moves, the next search sees it (the fingerprint moved)
    vectors.vectors_write(kind="creative_text", version="test-mem", rows=[("1999", q, "")])
    again = nearest_creatives_exact(vector=q, k=1)
    assert again is not None and again[0][0] == 1999 and again[0][1] == pytest.approx(0.0, abs=1e-5)
    # and a space above the row bound has no replica: the caller searches HNSW
    settings.PROFILES_MEMORY_INDEX_MAX_ROWS = 1000
    vectors.clear_cache()
    assert nearest_creatives_exact(vector=q, k=5) is None


def test_nearest_products_filters_by_stock_and_category() -> None:
    # given 40 products, every 4th out of stock, in two categories
    seed_catalog(
        *(
            product(f"p{i}", ["Sports", "Tents" if i % 2 else "Shoes"], "B", "10", in_stock=i % 4 != 0)
            for i in range(1, 41)
        )
    )
    projections.catch_up(projections.get_projection("product_docs"))
    x = _random_unit(np.random.default_rng(5), 40, 384)
    vectors.version_register(kind="product_text", version="t", dim=384)
    vectors.vectors_write(kind="product_text", version="t", rows=[(f"p{i + 1}", x[i], "") for i in range(40)])
    vectors.index_ensure(kind="product_text", version="t")
    vectors.activate(kind="product_text", version="t")
    # when filtered queries run
    in_stock = nearest_products(vector=x[0], k=10, in_stock=True)
    tents = nearest_products(vector=x[0], k=10, in_stock=True, category="Tents")
    # then each returns k results, all satisfying the filter
    assert len(in_stock) == 10 and all(int(p[1:]) % 4 != 0 for p, _ in in_stock)
    assert len(tents) == 10 and all(int(p[1:]) % 2 == 1 and int(p[1:]) % 4 != 0 for p, _ in tents)


def test_learned_vectors_switch_by_pointer_and_old_versions_are_dropped() -> None:
    rng = np.random.default_rng(1)
    ingest(ev("page_view", datetime.now(UTC), url="https://shop/"))
    apply_profiles()
    # given three learned 64-d versions written in turn, each activated
    for i in (1, 2, 3):
        n = services.learned_embeddings_write(
            kind="user_learned",
            version=f"two-tower-{i}",
            vectors={"u-1": rng.normal(size=64), "u-2": list(rng.normal(size=64))},
            activate=True,
        )
        assert n == 2
    # then the pointer names the newest, one previous version is kept, the oldest is gone
    assert EmbeddingSpace.objects.get(kind="user_learned").active_version == "two-tower-3"
    assert set(EmbeddingVersion.objects.filter(kind="user_learned").values_list("version", flat=True)) == {
        "two-tower-2",
        "two-tower-3",
    }
    assert not Embedding.objects.filter(version="two-tower-1").exists()
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'profiles_emb_user_learned_%%'")
        assert {r[0] for r in cur.fetchall()} == {
            vectors.index_name("user_learned", "two-tower-2"),
            vectors.index_name("user_learned", "two-tower-3"),
        }
    # and user_vector answers in the learned space with a unit vector
    got = user_vector(user_id="u-1")
    assert got is not None and got[0] == "user_learned:two-tower-3" and got[1].shape == (64,)
    assert float(np.linalg.norm(got[1])) == pytest.approx(1.0, abs=1e-5)
    _assert_serving_profile_matches("u-1")
    # and bad input is refused
    with pytest.raises(ValueError, match="kind must be"):
        services.learned_embeddings_write(kind="product_text", version="x", vectors={"a": [1.0]}, activate=False)
    with pytest.raises(ValueError, match="64-d"):
        services.learned_embeddings_write(
            kind="user_learned", version="two-tower-3", vectors={"a": [1.0]}, activate=False
        )


def test_serving_text_vector_never_waits_for_the_encoder() -> None:
    import time

    text = f"waterproof hiking boots {time.time_ns()}"  # never memoised before
    # when the serving path asks for a text not encoded yet, it answers at once without one
    assert text_vector(text=text, wait=False) is None
    # then the background encoder memoises it: the same vector a waiting caller computes
    deadline = time.monotonic() + 30
    got = None
    while got is None and time.monotonic() < deadline:
        time.sleep(0.05)
        got = text_vector(text=text, wait=False)
    assert got is not None
    from profiles.textmodel import encode

    np.testing.assert_allclose(got, encode([text])[0], atol=1e-5)
    assert text_vector(text=text) is got  # one memo for both paths
