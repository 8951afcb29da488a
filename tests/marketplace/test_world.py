"""The synthetic marketplace: determinism, shape, oracle sanity, learnability."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from marketplace.learnability import learnability
from marketplace.world import PRESETS, build_world, generate_history, position_bias, preset

# A simple model must beat popularity by at least this much AUC on held-out days.
LEARNABILITY_MARGIN = 0.05


@pytest.fixture(scope="module")
def test_world_history():
    world = build_world(PRESETS["test"])
    return world, list(generate_history(world))


def _digest(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    # given three generations, two with the same seed
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        call_command(
            "generate_world", "--size", "test", "--seed", str(seed), "--out", str(tmp_path / name), "--no-progress"
        )
    # then
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert set(a) == {"world.json", "events.jsonl.gz", "exposures.jsonl.gz", "manifest.json"}
    assert a == b
    assert a["world.json"] != c["world.json"]
    assert a["events.jsonl.gz"] != c["events.jsonl.gz"]


def test_world_has_the_documented_shape(test_world_history) -> None:
    world, history = test_world_history
    cfg = PRESETS["test"]
    assert len(world.shoppers) == cfg.n_users
    assert len(world.products) == cfg.n_products
    assert len(world.creatives) == cfg.n_creatives
    assert world.products[12].product_id == "P00012"
    assert world.shoppers[123].user_id == "U000123"
    assert all(len(p.category_path) == 2 and p.category_path in world.categories for p in world.products)
    assert {c.campaign for c in world.creatives} <= {k.key for k in world.campaigns}
    assert {k.advertiser for k in world.campaigns} == {a.key for a in world.advertisers}
    # each creative promotes a product of a brand its advertiser owns
    camp = {k.key: k for k in world.campaigns}
    adv = {a.key: a for a in world.advertisers}
    for cr in world.creatives:
        brand = world.products[world.product_index(cr.product_id)].brand
        assert brand in adv[camp[cr.campaign].advertiser].brands
    assert set(world.user_group.tolist()) == set(range(cfg.n_taste_groups))
    assert [d.day for d in history] == list(range(cfg.days))
    for d in history:
        stamps = [e["timestamp"] for e in d.events]
        assert stamps == sorted(stamps)
        assert [x.at for x in d.exposures] == sorted(x.at for x in d.exposures)
    ids = [e["event_id"] for d in history for e in d.events]
    assert len(ids) == len(set(ids))


def test_oracle_has_position_effect_and_drift(test_world_history) -> None:
    world, _ = test_world_history
    users = np.arange(50)[:, None]
    creatives = np.arange(len(world.creatives))[None, :]
    p1 = world.p_click(users, creatives, 1, "search", 0)
    p3 = world.p_click(users, creatives, 3, "search", 0)
    assert np.allclose(p3 / p1, position_bias(3))
    assert position_bias(3) < position_bias(2) < position_bias(1) == 1.0
    assert np.all((p1 > 0) & (p1 < 1))
    late = world.p_click(users, creatives, 1, "search", world.cfg.days)
    assert not np.allclose(p1, late)
    pb = world.p_purchase_given_click(users, creatives, 0)
    assert np.all((pb > 0) & (pb < 1))


def test_history_clicks_follow_the_oracle(test_world_history) -> None:
    world, history = test_world_history
    xs = [x for d in history for x in d.exposures]
    observed = np.mean([x.clicked_at is not None for x in xs])
    expected = np.mean([x.p_click for x in xs])
    # binomial standard error on ~40k exposures is < 0.002
    assert abs(observed - expected) < 0.006
    conv = [x for x in xs if x.converted_at is not None]
    assert conv and all(x.order_id and x.revenue for x in conv)
    orders = {e["properties"]["order_id"] for d in history for e in d.events if e["type"] == "purchase"}
    assert {x.order_id for x in conv} <= orders


def test_ground_truth_is_learnable_but_never_beats_the_oracle(test_world_history) -> None:
    world, history = test_world_history
    report = learnability(world, history, test_days=4)
    assert report.n_test > 5000
    assert report.model_auc >= report.popularity_auc + LEARNABILITY_MARGIN
    assert report.model_auc <= report.oracle_auc


def test_preset_overrides_seed() -> None:
    assert preset("test", seed=5).seed == 5
    assert PRESETS["full"].n_users >= 100_000 and PRESETS["full"].n_products >= 50_000
    assert PRESETS["full"].n_creatives >= 10_000
