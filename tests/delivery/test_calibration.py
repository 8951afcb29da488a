"""Live click calibration (ADR 0062): exact multipliers from smoothed counts, tokens that
carry the model's p_click into the delivery_stats projection, and the auto policy ranking
on the calibrated p_click (baselines and DELIVERY_CALIBRATION=False do not)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adplatform.eventlog import projections
from adplatform.eventlog.models import Event
from delivery.calibration import calibrations
from delivery.models import CreativeCalibration
from delivery.selectors import serving_stats
from ranking.events import decision_candidates
from tracking import services as tracking

from .conftest import NOW, rank


def test_multipliers_are_ratios_of_smoothed_counts_by_slot_position() -> None:
    rows = [
        # model m1: slot 1 clicks half as often as expected, slot 2 a quarter
        (1, "m1", 1, 30, 60.0),
        (2, "m1", 1, 0, 20.0),
        (2, "m1", 2, 5, 20.0),
        (3, "m2", 1, 5, 5.0),
        (4, "m3", 1, 1000, 1.0),
    ]
    got = calibrations(rows, prior=10.0)
    # m1: per slot R_1 = (30 + 0 + 10) / (80 + 10), R_2 = (5 + 10) / (20 + 10)
    r1, r2 = 40 / 90, 15 / 30
    assert got["m1"].overall == pytest.approx(r1)
    # creative 1 clicked as an average creative in slot 1 would: its multiplier is R_1's ...
    assert got["m1"].of(1) == pytest.approx(r1 * (30 + 10) / (60 * r1 + 10))
    # ... creative 2 against what its slot-1 and slot-2 impressions would have earned
    assert got["m1"].of(2) == pytest.approx(r1 * (0 + 5 + 10) / (20 * r1 + 20 * r2 + 10))
    # a creative without tracked impressions under that model gets R_1
    assert got["m1"].of(99) == pytest.approx(r1)
    # clicks exactly as expected: no change
    assert got["m2"].overall == pytest.approx(1.0) and got["m2"].of(3) == pytest.approx(1.0)
    # absurd evidence is clamped to 10×
    assert got["m3"].overall == 10.0 and got["m3"].of(4) == 10.0


def _serve_and_track(world: Any, *, rounds: int, clicked: int) -> None:
    """Serve both ads `rounds` times, record every impression, click only `clicked`'s."""
    for i in range(rounds):
        for ad in rank(limit=2, seed=i, user_id=f"u-{i}", at=NOW).ads:
            tracking.impression_record(token=ad.impression_url.rsplit("/", 1)[1], at=NOW + timedelta(seconds=1))
            if ad.creative_id == clicked:
                tracking.click_record(token=ad.click_url.rsplit("/", 1)[1], at=NOW + timedelta(seconds=2))
    projections.catch_up(projections.get_projection("delivery_stats"))


@pytest.mark.django_db(transaction=True)
def test_tracked_clicks_recalibrate_the_auto_ranking(world: Any, settings: Any) -> None:
    # given two advertisers' creatives the prior model scores alike (p_click 0.02), c1 bidding more
    settings.DELIVERY_CALIBRATION_PRIOR = 0.1
    world.placement("home_top", slots=2)
    world.product("sku-1")
    a1, a2 = world.advertiser("A"), world.advertiser("B")
    c1 = world.creative(a1, world.campaign(a1, bid="0.50"))
    c2 = world.creative(a2, world.campaign(a2, bid="0.40"))
    assert [ad.creative_id for ad in rank(limit=2).ads] == [c1, c2]
    # when both are shown three times and only c2 is clicked, every time
    _serve_and_track(world, rounds=3, clicked=c2)
    # then the tracked events carry the model's own p_click and version
    impressed = Event.objects.filter(type="AdImpressed").order_by("position")
    assert {(e.data["p_click"], e.data["model_version"]) for e in impressed} == {(0.02, "prior-0")}
    # and the projection holds, per creative, model and slot: impressions, clicks, expected
    # clicks (c1 always in slot 1, c2 in slot 2): slot 1 R_1 = (0 + 0.1) / (0.06 + 0.1),
    # slot 2 R_2 = (3 + 0.1) / (0.06 + 0.1) → clamped to 10
    cal = serving_stats(model_version="prior-0").calibration["prior-0"]
    r1 = 0.1 / 0.16
    assert cal.overall == pytest.approx(r1)
    assert cal.of(c1) == pytest.approx(r1 * 0.1 / (0.06 * r1 + 0.1))
    assert cal.of(c2) == pytest.approx(r1 * 3.1 / (0.06 * 10 + 0.1))
    # so auto now ranks c2 first: 0.40 × 0.02 × m2 × 1000 ≈ 22.1 > 0.50 × 0.02 × m1 × 1000 ≈ 4.5
    m1, m2 = cal.of(c1), cal.of(c2)
    result = rank(limit=2, user_id="u-new")
    assert [ad.creative_id for ad in result.ads] == [c2, c1]
    [decision] = Event.objects.filter(type="AdDecisionMade", stream=f"decision:{result.request_id}")
    scores = {c["creative_id"]: c["scores"] for c in decision_candidates(decision.data)}
    assert scores[c2]["p_click"] == pytest.approx(0.02 * m2) and scores[c2]["calibration"] == pytest.approx(m2)
    assert scores[c1]["p_click"] == pytest.approx(0.02 * m1) and scores[c1]["ecpm"] == pytest.approx(10 * m1)
    # and the tokens of these ads still carry the raw model p_click, not the calibrated one
    ad = result.ads[0]
    served = tracking.served_ad_from_token(token=ad.click_url.rsplit("/", 1)[1], kind="c", now=NOW)
    assert served.p_click == pytest.approx(0.02) and served.model_version == "prior-0"
    # the baselines and a disabled calibration rank on the model's p_click alone
    for policy in ("popular", "random"):
        r = rank(limit=2, policy=policy, user_id=f"u-{policy}")
        [d] = Event.objects.filter(type="AdDecisionMade", stream=f"decision:{r.request_id}")
        assert {c["scores"]["calibration"] for c in decision_candidates(d.data)} == {1.0}
    settings.DELIVERY_CALIBRATION = False
    assert [ad.creative_id for ad in rank(limit=2, user_id="u-off").ads] == [c1, c2]


@pytest.mark.django_db(transaction=True)
def test_calibration_replays_to_the_same_state(world: Any) -> None:
    world.placement("home_top", slots=2)
    world.product("sku-1")
    a1, a2 = world.advertiser("A"), world.advertiser("B")
    world.creative(a1, world.campaign(a1, bid="0.50"))
    c2 = world.creative(a2, world.campaign(a2, bid="0.40"))
    _serve_and_track(world, rounds=2, clicked=c2)
    # (another model's rows are kept but not read for this one)
    CreativeCalibration.objects.create(
        creative_id=c2, model_version="older-1", position=1, impressions=9, clicks=9, expected_clicks=0.1
    )
    live = serving_stats(model_version="prior-0").calibration
    assert set(live) == {"prior-0"}
    projections.rebuild(projections.get_projection("delivery_stats"))
    assert serving_stats(model_version="prior-0").calibration == live
