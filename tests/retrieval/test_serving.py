"""retrieval_train end to end on the event log: learned vectors written as one version
(shoppers, products, creatives), nearest_creatives searching the learned space with the
HNSW index, cold-start fallback to the content space, idempotent shopper refresh task."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.db import connection

from adplatform.celery import app
from campaigns import services as campaigns
from profiles import selectors as profiles
from profiles import services as profiles_services
from profiles import vectors
from profiles.models import EmbeddingSpace, EmbeddingVersion
from ranking.retrieval import services, tasks
from ranking.retrieval.training import TrainConfig

from ..campaigns.conftest import campaign_spec, creative_spec
from ..profiles.conftest import apply_profiles, ev, ingest, product, seed_catalog

pytestmark = pytest.mark.django_db(transaction=True)

CATEGORIES = [
    ("Sports", "Tents", "Trek"),
    ("Sports", "Boots", "Trek"),
    ("Home", "Mugs", "Cozy"),
    ("Home", "Pans", "Chef"),
]
SMALL = TrainConfig(epochs=3, dim=16, hidden=32, batch_size=64)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    vectors.clear_cache()
    yield
    vectors.clear_cache()
    # the flush between transactional tests empties tables but keeps indexes: drop the
    # per-version HNSW indexes these tests built so later tests see a clean schema
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'profiles_embedding' "
            "AND starts_with(indexname, 'profiles_emb_')"
        )
        for (name,) in cur.fetchall():
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')


def _seed_text_space(pids: list[str]) -> None:
    """A stand-in MiniLM product space (random unit vectors; loading the real model costs ~6 s)."""
    rng = np.random.default_rng(5)
    vectors.version_register(kind="product_text", version="text-test", dim=384)
    vectors.vectors_write(kind="product_text", version="text-test", rows=[(p, rng.normal(size=384), "") for p in pids])
    vectors.index_ensure(kind="product_text", version="text-test")
    vectors.activate(kind="product_text", version="text-test")


def _world() -> tuple[list[int], datetime]:
    pids = []
    items = []
    for ci, (top, leaf, brand) in enumerate(CATEGORIES):
        for j in range(6):
            pid = f"p{ci}{j}"
            pids.append(pid)
            items.append(product(pid, [top, leaf], brand, str(10 + 5 * j), title=f"{brand} {leaf} {j}"))
    seed_catalog(*items)
    _seed_text_space(pids)
    adv = campaigns.advertiser_create(name="Acme", currency="EUR", timezone_name="UTC", actor="test")
    camp = campaigns.campaign_create(advertiser_id=adv, spec=campaign_spec(), actor="test")
    creatives = []
    for ci in range(len(CATEGORIES)):
        cid = campaigns.creative_create(
            advertiser_id=adv, campaign_id=camp, spec=creative_spec(product_id=f"p{ci}0"), actor="test"
        )
        campaigns.creative_review(creative_id=cid, decision="approve", actor="test")
        creatives.append(cid)
    # 16 shoppers, each browsing mostly one category over 4 days, 3 sessions a day
    now = datetime.now(UTC).replace(microsecond=0)
    rng = np.random.default_rng(9)
    events = []
    for u in range(16):
        fav = u % len(CATEGORIES)
        for day in range(4):
            for s in range(3):
                at = now - timedelta(days=4 - day, hours=3 * s)
                cat = fav if rng.random() < 0.8 else int(rng.integers(len(CATEGORIES)))
                for k in range(3):
                    pid = f"p{cat}{int(rng.integers(6))}"
                    events.append(
                        ev("product_view", at + timedelta(minutes=k), user=f"u{u}", product_id=pid)
                        | {"session_id": f"s{u}-{day}-{s}"}
                    )
    ingest(*events)
    return creatives, now


def test_train_writes_one_version_and_creatives_are_searched_in_the_learned_space() -> None:
    # given a catalogue, four approved creatives and four days of shoppers' views
    creatives, now = _world()
    # when retrieval is trained (seeded, CPU) and published
    result = services.retrieval_train(device="cpu", seed=0, config=SMALL)
    v = result.version
    # then every learned kind holds version v, active, with its HNSW index
    for kind, n in (("user_learned", 16), ("item_learned", 24), ("creative_learned", 4)):
        ver = EmbeddingVersion.objects.get(kind=kind, version=v)
        assert (ver.dim, ver.rows, ver.index_name) == (16, n, vectors.index_name(kind, v))
        assert EmbeddingSpace.objects.get(kind=kind).active_version == v
    assert (result.users_written, result.items_written, result.creatives_written) == (16, 24, 4)
    assert result.window.split < result.window.until and result.train_examples > 0
    assert {"two_tower.recall@50", "covisitation.recall@50", "popularity.ndcg@10"} <= set(result.metrics)
    # and a creative's vector is its product's item vector
    item = profiles.learned_vectors(kind="item_learned", version=v, keys=["p00"])["p00"]
    cr = profiles.learned_vectors(kind="creative_learned", version=v, keys=[str(creatives[0])])[str(creatives[0])]
    assert np.allclose(item, cr, atol=1e-6)
    # and the shopper's vector is served in the learned space
    got = profiles.user_vector(user_id="u0")
    assert got is not None and got[0] == f"user_learned:{v}" and got[1].shape == (16,)
    # when delivery searches creatives with that vector and its space
    hits = profiles.nearest_creatives(vector=got[1], k=3, space=got[0])
    # then it gets k creatives ordered by cosine in the learned space
    every = profiles.learned_vectors(kind="creative_learned", version=v, keys=[str(c) for c in creatives])
    exact = sorted(creatives, key=lambda c: -float(every[str(c)] @ got[1]))[:3]
    assert [c for c, _ in hits] == exact
    assert profiles.nearest_creatives(vector=got[1], k=2, space=got[0], creative_ids=[creatives[3]]) == [
        (creatives[3], pytest.approx(1 - float(every[str(creatives[3])] @ got[1]), abs=1e-4))
    ]
    # and, once the version holds as many creatives as a real one (3,000 more, analysed),
    # the serving query is an index scan on this version's HNSW index
    rng = np.random.default_rng(4)
    padding = {str(100_000 + i): rng.normal(size=16) for i in range(3000)}
    profiles_services.learned_embeddings_write(kind="creative_learned", version=v, vectors=padding, activate=False)
    with connection.cursor() as cur:
        cur.execute("ANALYZE profiles_embedding")
    space = vectors.Space(kind="creative_learned", version=v, dim=16)
    query = vectors.nearest_sql(space).replace("{extra}", "").split("; ")[-1]
    lit = vectors._literal(got[1])
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + query, [lit, "creative_learned", v, lit, 10])
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert f"Index Scan using {vectors.index_name('creative_learned', v)}" in plan
    assert len(profiles.nearest_creatives(vector=got[1], k=10, space=got[0])) == 10
    # and without a space a 16-d vector (no text space of that size) finds the learned space too
    assert profiles.nearest_creatives(vector=got[1], k=3) == profiles.nearest_creatives(
        vector=got[1], k=3, space=got[0]
    )
    # while a content-space version searches the MiniLM creative texts (none stored here)
    assert profiles.nearest_creatives(vector=got[1], k=3, space="user_content:text-test") == []
    # and the same holdout evaluated from the stored artifact gives the same figures
    again = services.retrieval_evaluate(artifact=result.artifact)
    assert again["queries"] == result.metrics["queries"]
    assert again["two_tower.recall@50"] == pytest.approx(result.metrics["two_tower.recall@50"], abs=0.02)
    assert again["covisitation.recall@50"] == result.metrics["covisitation.recall@50"]


def test_cold_start_shopper_falls_back_to_the_content_vector() -> None:
    # given a trained, active learned version
    _world()
    result = services.retrieval_train(device="cpu", config=SMALL)
    # when a new shopper appears after training
    ingest(ev("product_view", datetime.now(UTC) - timedelta(seconds=5), user="new", product_id="p21"))
    apply_profiles()
    # then their vector is the content (text-space) vector, which searches creative texts
    got = profiles.user_vector(user_id="new")
    assert got is not None and got[0] == "user_content:text-test" and got[1].shape == (384,)
    assert profiles.user_vector(user_id="u1") is not None
    assert profiles.user_vector(user_id="u1")[0] == f"user_learned:{result.version}"  # type: ignore[index]


def test_refresh_task_updates_shoppers_with_new_activity_once() -> None:
    # given a trained version and a shopper who then browses another category
    _world()
    result = services.retrieval_train(device="cpu", config=SMALL)
    before = profiles.learned_vectors(kind="user_learned", version=result.version, keys=["u0"])["u0"]
    now = datetime.now(UTC)
    ingest(*(ev("product_view", now - timedelta(seconds=30 - i), user="u0", product_id=f"p3{i}") for i in range(4)))
    # when the refresh task runs
    first = tasks.retrieval_users_refresh.apply().get()
    # then exactly that shopper's vector is recomputed in the same version
    assert (first["version"], first["checked"], first["written"]) == (result.version, 1, 1)
    after = profiles.learned_vectors(kind="user_learned", version=result.version, keys=["u0"])["u0"]
    assert not np.allclose(before, after)
    # and a second run writes nothing (idempotent)
    second = tasks.retrieval_users_refresh.apply().get()
    assert (second["checked"], second["written"]) == (1, 0)
    assert np.array_equal(
        profiles.learned_vectors(kind="user_learned", version=result.version, keys=["u0"])["u0"], after
    )


def test_refresh_removes_the_learned_vector_of_a_shopper_who_opted_out() -> None:
    # given a trained version and a shopper who then views a product with consent: false
    _world()
    result = services.retrieval_train(device="cpu", config=SMALL)
    ingest(ev("product_view", datetime.now(UTC) - timedelta(seconds=5), user="u2", product_id="p10", consent=False))
    # when the refresh runs
    got = services.retrieval_users_refresh()
    # then the learned vector is gone and nothing else was written
    assert (got.checked, got.written, got.removed) == (1, 0, 1)
    assert profiles.learned_vectors(kind="user_learned", version=result.version, keys=["u2"]) == {}
    assert profiles.learned_vectors(kind="user_learned", version=result.version, keys=["u3"]) != {}


def test_tasks_are_registered_on_the_ml_queue_with_time_limits() -> None:
    scheduled = {e["task"]: e for e in app.conf.beat_schedule.values()}
    assert scheduled["ranking.retrieval_users_refresh"]["options"]["queue"] == "ml"
    for task in (tasks.retrieval_train, tasks.retrieval_users_refresh):
        assert task.name in app.tasks
        assert task.queue == "ml"
        assert 0 < task.soft_time_limit < task.time_limit


def test_refresh_without_a_learned_version_does_nothing() -> None:
    assert services.retrieval_users_refresh().version is None


def test_a_challenger_is_served_only_if_it_beats_the_champion_on_the_same_holdout() -> None:
    # given a log and no served learned version (recall@10: the small corpus makes recall@50 trivially 1)
    _world()
    metric = "two_tower.recall@10"
    # when a first version is trained
    first = services.retrieval_train_promote(device="cpu", config=SMALL, metric=metric)
    # then it is served in every learned space
    assert (first.promoted, first.reason) == (True, "no champion")
    v1 = first.result.version
    assert {s.kind: s.active_version for s in EmbeddingSpace.objects.all() if s.kind.endswith("_learned")} == {
        "user_learned": v1,
        "item_learned": v1,
        "creative_learned": v1,
    }
    # when an untrained challenger (learning rate 0) is trained on the same log
    worse = services.retrieval_train_promote(device="cpu", config=replace(SMALL, lr=0.0), metric=metric)
    # then it is stored but refused, the champion having been re-scored on the same holdout
    assert worse.promoted is False and worse.result.version != v1
    assert worse.champion_version == v1 and worse.champion_metrics is not None
    assert worse.result.metrics[metric] < worse.champion_metrics[metric]
    assert EmbeddingVersion.objects.filter(kind="user_learned", version=worse.result.version).exists()
    assert profiles.learned_version(kind="user_learned") == v1
    assert profiles.learned_version(kind="creative_learned") == v1
