"""The simulator's pure pieces: shopper behaviour per latent tastes, oracle ad outcomes,
the last-click tally, shopper assignment and the confidence intervals (hand cases)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from marketplace.simulation import (
    PolicyTally,
    ad_outcomes,
    assign_shoppers,
    fairness_report,
    iter_session_plans,
    new_creatives_of,
    policy_report,
    session_pages,
    session_plans,
)
from marketplace.stats import gini, ratio_ci, ratio_diff_ci, rows_statistic_ci, top_share, wilson
from marketplace.world import PLACEMENT_BY_PAGE, build_world, preset

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return build_world(preset("test", seed=11))


def test_wilson_interval_matches_hand_computed_values() -> None:
    # given 5/10 and 0/10 successes, then the Wilson 95 % bounds are the textbook values
    iv = wilson(5, 10)
    assert (iv.value, round(iv.low, 4), round(iv.high, 4)) == (0.5, 0.2366, 0.7634)
    iv = wilson(0, 10)
    assert (iv.value, iv.low, round(iv.high, 4)) == (0.0, 0.0, 0.2775)
    assert wilson(0, 0).as_dict() == {"value": 0.0, "low": 0.0, "high": 1.0}


def test_bootstrap_is_a_ratio_of_sums_and_exact_when_units_agree() -> None:
    # given shoppers with identical ratios, then every resample gives the same ratio
    iv = ratio_ci([1, 1, 1], [2, 2, 2], draws=200, seed=1)
    assert (iv.value, iv.low, iv.high) == (0.5, 0.5, 0.5)
    # and the point value is Σnum/Σden, not the mean of ratios
    assert ratio_ci([1, 0], [1, 3], draws=50).value == 0.25
    # and a difference of two constant groups is exact
    d = ratio_diff_ci([3, 3], [10, 10], [1, 1, 1], [10, 10, 10], draws=200, seed=2)
    assert (round(d.value, 12), round(d.low, 12), round(d.high, 12)) == (0.2, 0.2, 0.2)


def test_bootstrap_interval_covers_the_value_and_is_reproducible() -> None:
    # given varied shoppers
    rng = np.random.default_rng(0)
    imps = rng.integers(1, 30, 200)
    clicks = rng.binomial(imps, 0.05)
    # when bootstrapped twice with the same seed
    a = ratio_ci(clicks, imps, draws=500, seed=9)
    b = ratio_ci(clicks, imps, draws=500, seed=9)
    # then the interval brackets the value and is the same both times
    assert a == b
    assert a.low < a.value < a.high


def test_session_pages_follow_the_shoppers_tastes(world) -> None:  # type: ignore[no-untyped-def]
    # given one shopper and her leaf-category affinities on the simulated day
    u, day = 7, 14.0
    aff = world.leaf_affinity(np.full(len(world.categories), u), np.arange(len(world.categories)), day)
    softmax = np.exp(aff - aff.max())
    softmax /= softmax.sum()
    # when she shops 3000 sessions
    visits = np.zeros(len(world.categories))
    for s in range(3000):
        pages = list(session_pages(world, u, random.Random(s), day))
        visits[pages[1].leaf if pages[0].page_type == "home" else pages[0].leaf] += 1
        # every page asks the placement of its page type, products belong to the session's leaf
        assert all(p.placement == PLACEMENT_BY_PAGE[p.page_type] for p in pages)
        assert all(world.product_leaf[p.product_idx] == p.leaf for p in pages if p.product_idx is not None)
    # then categories are visited in proportion to softmax(affinity)
    assert np.abs(visits / 3000 - softmax).max() < 0.03
    # and the same seed gives the same session
    assert list(session_pages(world, u, random.Random(5), day)) == list(session_pages(world, u, random.Random(5), day))


def test_ad_outcomes_are_draws_from_the_oracle(world) -> None:  # type: ignore[no-untyped-def]
    # given a product page and two rendered ads
    page = next(p for p in session_pages(world, 3, random.Random(1), 14.0) if p.page_type == "product")
    creatives, positions = [4, 9], [1, 2]
    # when the outcomes are drawn
    got = ad_outcomes(world, 3, creatives, positions, page, 14.0, random.Random(42))
    # then they are exactly the Bernoulli draws against p_click and p_purchase_given_click
    pc = world.p_click(3, np.array(creatives), np.array(positions), "product", 14.0, page.leaf)
    pb = world.p_purchase_given_click(3, np.array(creatives), 14.0)
    rng = random.Random(42)
    expected = []
    for i in range(2):
        clicked = rng.random() < pc[i]
        expected.append((clicked, clicked and rng.random() < pb[i]))
    assert got == expected
    # and over many draws the click rate is p_click
    rng = random.Random(0)
    clicks = sum(ad_outcomes(world, 3, [4], [1], page, 14.0, rng)[0][0] for _ in range(5000))
    assert abs(clicks / 5000 - pc[0]) < 0.01


def test_tally_counts_conversions_by_last_click_within_the_window() -> None:
    # given a CPM impression, a CPC click and a CPA click for one shopper
    t = PolicyTally(attribution_window=timedelta(hours=1))
    t.request("u1")
    t.impression("u1", 10, "cpm", Decimal("4.00"))
    t.click("u1", T0, 10, "cpc", Decimal("0.30"))
    # when she orders within the window, then outside it
    assert t.order("u1", T0 + timedelta(minutes=30), Decimal("20.00")) is True
    assert t.order("u1", T0 + timedelta(hours=2), Decimal("5.00")) is False
    # and a shopper without a click orders
    assert t.order("u2", T0, Decimal("9.00")) is False
    t.click("u3", T0, 11, "cpa", Decimal("2.50"))
    assert t.order("u3", T0 + timedelta(seconds=1), Decimal("12.00")) is True
    # then spend is CPM/1000 + CPC + CPA, revenue only the attributed orders
    tot = t.totals()
    assert (tot.requests, tot.impressions, tot.clicks, tot.conversions) == (1, 1, 2, 2)
    assert (tot.spend, tot.revenue) == (Decimal("2.804"), Decimal("32.00"))
    assert t.by_campaign[11].spend == Decimal("2.50")


def test_shoppers_are_split_into_disjoint_equal_groups_and_sessions_interleave(world) -> None:  # type: ignore[no-untyped-def]
    # when 90 shoppers are assigned to three policies
    groups = assign_shoppers(len(world.shoppers), 90, ["random", "popular", "auto"], seed=4)
    # then the groups are disjoint, equal and reproducible
    assert [len(g) for g in groups.values()] == [30, 30, 30]
    assert len(set().union(*map(set, groups.values()))) == 90
    assert groups == assign_shoppers(len(world.shoppers), 90, ["random", "popular", "auto"], seed=4)
    # and each policy's sessions go to its own shoppers, round-robin in time
    plans = session_plans(world, groups, 5, seed=4)
    assert [p.policy for p in plans[:6]] == ["random", "popular", "auto"] * 2
    assert all(p.user_idx in groups[p.policy] for p in plans)
    assert [p.index for p in plans] == list(range(15))


def test_policy_report_gives_totals_intervals_and_difference_vs_random() -> None:
    # given two policies whose shoppers behave identically except auto clicks twice as often
    tallies = {}
    for name, clicks in (("random", 1), ("auto", 2)):
        t = PolicyTally(attribution_window=timedelta(days=1))
        for u in range(4):
            for _ in range(10):
                t.impression(f"{name}-{u}", 1, "cpc", Decimal("0.5"))
            for _ in range(clicks):
                t.click(f"{name}-{u}", T0, 1, "cpc", Decimal("0.5"))
        tallies[name] = t
    # when reported
    rep = policy_report(tallies, draws=100, seed=0)
    # then totals and exact (zero-width) intervals come out, and auto is +10 CTR points over random
    assert (rep["auto"]["impressions"], rep["auto"]["clicks"], rep["auto"]["spend"]) == (40, 8, "4.0000")
    assert rep["auto"]["bootstrap"]["ctr"] == {"value": 0.2, "low": 0.2, "high": 0.2}
    assert {k: round(v, 12) for k, v in rep["auto"]["vs_random"]["ctr"].items()} == {
        "value": 0.1,
        "low": 0.1,
        "high": 0.1,
    }
    assert "vs_random" not in rep["random"]
    assert rep["random"]["wilson"]["ctr"]["value"] == 0.1


def test_several_orders_after_one_click_report_a_cvr_above_one() -> None:
    # given a shopper who clicks once and then places three orders within the window
    t = PolicyTally(attribution_window=timedelta(days=1))
    t.impression("u", 1, "cpc", Decimal("0.5"))
    t.click("u", T0, 1, "cpc", Decimal("0.5"))
    for minutes in (1, 2, 3):
        assert t.order("u", T0 + timedelta(minutes=minutes), Decimal("10"))
    # when reported, CVR is conversions per click (3.0), not a proportion that breaks the report
    rep = policy_report({"auto": t}, draws=20, seed=0)
    assert (rep["auto"]["clicks"], rep["auto"]["conversions"]) == (1, 3)
    assert rep["auto"]["bootstrap"]["cvr"]["value"] == 3.0


def test_policy_report_compares_every_policy_with_each_earlier_baseline() -> None:
    tallies = {name: PolicyTally(attribution_window=timedelta(days=1)) for name in ("random", "popular", "auto")}
    for name, clicks in (("random", 1), ("popular", 2), ("auto", 3)):
        for u in range(3):
            for _ in range(10):
                tallies[name].impression(f"{name}-{u}", 1, "cpm", Decimal("1.00"))
            for _ in range(clicks):
                tallies[name].click(f"{name}-{u}", T0, 1, "cpm", Decimal("0"))
    rep = policy_report(tallies, draws=50, seed=0)
    assert [sorted(k for k in rep[n] if k.startswith("vs_")) for n in ("random", "popular", "auto")] == [
        [],
        ["vs_random"],
        ["vs_popular", "vs_random"],
    ]
    # auto's CTR 30 % is 10 points over popular's 20 % and 20 over random's 10 %
    assert round(rep["auto"]["vs_popular"]["ctr"]["value"], 12) == 0.1
    assert round(rep["auto"]["vs_random"]["ctr"]["value"], 12) == 0.2


def test_endless_plans_for_a_duration_start_like_the_bounded_ones(world) -> None:  # type: ignore[no-untyped-def]
    # given the same groups and seed
    groups = assign_shoppers(len(world.shoppers), 30, ["random", "auto"], seed=8)
    # when plans are drawn without a session count (a --duration run)
    endless = iter_session_plans(world, groups, None, seed=8)
    first = [next(endless) for _ in range(40)]
    # then they are the bounded plans' prefix, and the generator keeps going
    assert first == session_plans(world, groups, 20, seed=8)
    assert next(endless).index == 40


def test_simulate_command_asks_for_a_seeded_world_first(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # given no manifest under the var dir
    settings.VAR_DIR = tmp_path
    # when simulate is started, then it says which seeding command to run, before any HTTP
    with pytest.raises(CommandError) as err:
        call_command("simulate", "--key", "k", "--size", "test", "--world-seed", "9")
    assert str(err.value) == (
        f"no manifest at {tmp_path}/marketplace/test-9.json: run `manage.py seed_demo --size test --seed 9` first"
    )


def test_gini_and_top_share_match_hand_computed_values() -> None:
    assert gini([1, 1, 1, 1]) == pytest.approx(0.0)
    # one of four holds everything: (n − 1) / n
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)
    # 2 · (1·1 + 2·2 + 3·3 + 4·4) / (4 · 10) − 5/4 = 0.25
    assert gini([4, 1, 3, 2]) == pytest.approx(0.25)
    assert gini([0, 0]) == 0.0 and gini([]) == 0.0
    # top 10 % of 4 → the top 1: 4 / 10; of 30 → the top 3
    assert top_share([1, 2, 3, 4]) == pytest.approx(0.4)
    assert top_share([1] * 27 + [10, 10, 10]) == pytest.approx(30 / 57)
    assert top_share([0, 0]) == 0.0


def test_rows_statistic_ci_resamples_whole_rows() -> None:
    # given every shopper saw advertisers 0 and 1 alike: every resample has Gini 0
    same = np.array([[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    assert rows_statistic_ci(same, gini, draws=50, seed=1).as_dict() == {"value": 0.0, "low": 0.0, "high": 0.0}
    # given shoppers who each saw one advertiser: the column sums' Gini, an interval around it
    split = np.array([[4.0, 0.0]] * 5 + [[0.0, 4.0]] * 5)
    iv = rows_statistic_ci(split, gini, draws=200, seed=1)
    assert iv.value == pytest.approx(0.0) and iv.low == pytest.approx(0.0) and 0.0 < iv.high <= 0.5
    assert iv == rows_statistic_ci(split, gini, draws=200, seed=1)


def test_fairness_report_counts_advertisers_categories_and_new_creatives() -> None:
    # given shopper a saw advertiser 1 three times (creative 10, new) and advertiser 2 once (creative 20),
    # shopper b saw advertiser 1 twice (creative 11); the world has advertisers 1, 2, 3 and 4 categories
    t = PolicyTally(attribution_window=timedelta(days=1))
    for user, adv, creative, cat, new, n in (("a", 1, 10, "x/1", True, 3), ("a", 2, 20, "x/2", False, 1),
                                             ("b", 1, 11, "x/1", False, 2)):  # fmt: skip
        for _ in range(n):
            t.impression(user, adv * 100, "cpm", Decimal("1.00"), advertiser_id=adv, creative_id=creative,
                         category=cat, new=new)  # fmt: skip
    # when reported
    f = fairness_report(t, advertisers=[1, 2, 3], categories=4, draws=100, seed=0)
    # then 2 of 3 advertisers, 3 creatives, 2 of 4 categories were shown
    assert (f["advertisers"], f["advertisers_shown"], f["creatives_shown"]) == (3, 2, 3)
    assert (f["categories_shown"], f["category_coverage"]) == (2, 0.5)
    # impressions per advertiser (5, 1, 0): Gini 2 · (0·1 + 1·2 + 5·3) / (3 · 6) − 4/3 = 5/9; top 10 % = top 1: 5/6
    assert f["gini_advertisers"]["value"] == pytest.approx(5 / 9)
    assert f["top10pct_advertisers_share"]["value"] == pytest.approx(5 / 6)
    # 3 of 6 impressions went to a new creative
    assert f["new_creatives_share"]["value"] == pytest.approx(0.5)
    assert f["new_creatives_share"]["low"] <= 0.5 <= f["new_creatives_share"]["high"]


def test_new_creatives_are_those_below_the_threshold_before_the_run() -> None:
    manifest = {"creatives": {"c1": 10, "c2": 11, "c3": 12}}
    assert new_creatives_of(manifest, {10: 250, 11: 199}, 200) == frozenset({11, 12})
