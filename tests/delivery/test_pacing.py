"""Even pacing: active time from dayparts (time zone, schedule), the controller step, a
compressed day of diurnal traffic landing within ±5 % of the daily budget, and the
persisted state moved atomically by pacing_tick under an injected clock."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from campaigns.selectors import Daypart
from delivery import pacing
from delivery.models import PacingState
from delivery.services import pacing_tick

DAY = datetime(2026, 3, 4, tzinfo=UTC)  # a Wednesday


def test_active_windows_follow_dayparts_in_the_campaigns_zone_and_the_schedule() -> None:
    start_of_day = pacing.day_start_of(DAY + timedelta(hours=12), "Europe/Berlin")  # 2026-03-04 00:00 CET
    parts = (Daypart(days=(2,), start=time(8), end=time(12)), Daypart(days=(2,), start=time(18), end=time.max),
             Daypart(days=(3,), start=time(0), end=time(23)))  # fmt: skip
    windows = pacing.active_windows(parts, "Europe/Berlin", start_of_day, DAY - timedelta(days=9), None)
    assert [(a.astimezone(UTC).hour, b.astimezone(UTC).hour) for a, b in windows] == [(7, 11), (17, 23)]
    # 10:00 CET (09:00 UTC): 2 h before, 2 h + 6 h after
    assert pacing.active_seconds(windows, DAY + timedelta(hours=9)) == (7200.0, 8 * 3600.0)
    # the campaign ends at 20:00 CET: the evening window is cut to 18-20
    cut = pacing.active_windows(
        parts, "Europe/Berlin", start_of_day, DAY - timedelta(days=9), DAY + timedelta(hours=19)
    )
    assert pacing.active_seconds(cut, DAY) == (0.0, 6 * 3600.0)
    # no dayparts: the whole local day
    assert pacing.active_seconds(pacing.active_windows((), "UTC", DAY, DAY, None), DAY + timedelta(hours=6)) == (
        6 * 3600.0,
        18 * 3600.0,
    )


def test_controller_step_direction_and_bounds() -> None:
    step: dict[str, Any] = dict(
        budget=Decimal(100), spent_at_last_tick=Decimal(10), active_since_last_tick=60.0, active_remaining=36000.0
    )
    # wanted rate 85/36000 ≈ 0.00236/s; observed 5/60 ≈ 0.083/s → ahead: throttle halves (bounded step)
    assert pacing.next_throttle(0.8, spent=Decimal(15), **step) == pytest.approx(0.4)
    # observed 0.1/60 ≈ 0.00167/s < wanted → raised by the ratio (≈1.42)
    assert pacing.next_throttle(0.5, spent=Decimal("10.1"), **step) == pytest.approx(0.5 * (89.9 / 36000) / (0.1 / 60))
    # nothing spent since the last tick → doubled, never above 1
    assert pacing.next_throttle(0.7, spent=Decimal(10), **step) == 1.0
    # budget used up → minimum; no active time left → open
    assert pacing.next_throttle(0.7, spent=Decimal(100), **step) == pacing.THROTTLE_MIN
    assert pacing.next_throttle(0.7, spent=Decimal(50), **{**step, "active_remaining": 0.0}) == 1.0


def simulate_day(*, demand: float, seed: int, dayparts: tuple[Daypart, ...] = ()) -> float:
    """A day of diurnal traffic against a 500.00 daily budget: each minute the unthrottled
    demand (spend per active minute, `demand` × the even rate at the daily peak shape) is
    delivered with the throttle's probability per request; ticks every 60 s. Returns the
    day's spend ÷ budget."""
    rng = random.Random(seed)
    budget = Decimal(500)
    windows = pacing.active_windows(dayparts, "UTC", DAY, DAY - timedelta(days=1), None)
    total_active = pacing.active_seconds(windows, DAY)[1]
    even_per_min = float(budget) / (total_active / 60)
    throttle, spent, spent_last, last_tick = pacing.THROTTLE_START, Decimal(0), Decimal(0), DAY
    for minute in range(24 * 60):
        now = DAY + timedelta(minutes=minute)
        before, after = pacing.active_seconds(windows, now)
        if minute and minute % 1 == 0:
            before_last, _ = pacing.active_seconds(windows, last_tick)
            throttle = pacing.next_throttle(throttle, budget=budget, spent=spent, spent_at_last_tick=spent_last,
                                            active_since_last_tick=before - before_last, active_remaining=after,
                                            finish_early=pacing.FINISH_EARLY_SHARE * total_active)  # fmt: skip
            spent_last, last_tick = spent, now
        if not any(a <= now < b for a, b in windows):
            continue
        shape = 1.0 + 0.8 * math.sin(2 * math.pi * (minute / 1440 - 0.3))  # evening peak, night trough
        requests = 20
        per_request = demand * even_per_min * shape / requests
        for _ in range(requests):
            if spent >= budget:
                break  # eligibility: the daily budget is used up
            if rng.random() < throttle and rng.random() < 0.5:  # won the auction half of the time
                spent += Decimal(str(round(2 * per_request * rng.uniform(0.5, 1.5), 4)))
    return float(spent / budget)


@pytest.mark.parametrize("demand", [1.5, 3.0, 10.0])
def test_a_day_of_diurnal_traffic_lands_within_5_percent_of_the_budget(demand: float) -> None:
    for seed in (1,):
        ratio = simulate_day(demand=demand, seed=seed)
        assert 0.95 <= ratio <= 1.0 + 0.01, (demand, seed, ratio)


def test_dayparted_day_lands_within_5_percent() -> None:
    parts = (Daypart(days=(2,), start=time(9), end=time(13)), Daypart(days=(2,), start=time(17), end=time(22)))
    ratio = simulate_day(demand=4.0, seed=3, dayparts=parts)
    assert 0.95 <= ratio <= 1.01, ratio


def test_pacing_tick_persists_the_throttle_once_per_interval(world: Any, settings: Any) -> None:
    # given an even-paced campaign with a daily budget
    settings.DELIVERY_PACING_INTERVAL_SECONDS = 60
    from campaigns import services as campaigns

    from .conftest import NOW

    adv = world.advertiser()
    camp = world.campaign(adv, pacing="even", daily_budget=Decimal("24.00"))
    world.creative(adv, camp)
    t0 = NOW.replace(hour=6, minute=0, second=0)
    # when the first tick runs, the day starts open
    assert pacing_tick(at=t0) == 1
    row = PacingState.objects.get(campaign_id=camp)
    assert (row.throttle, row.tick_at) == (1.0, t0)
    # a second call inside the interval changes nothing
    assert pacing_tick(at=t0 + timedelta(seconds=30)) == 0
    # when it spent 1.00 in the next minute (wanted: 24/18h ≈ 0.0222 per minute) the throttle drops by the max step
    from django.db import transaction

    with transaction.atomic():
        campaigns.budget_charge(campaign_id=camp, amount=Decimal("1.00"), at=t0 + timedelta(seconds=40))
    assert pacing_tick(at=t0 + timedelta(seconds=60)) == 1
    row.refresh_from_db()
    assert row.throttle == pytest.approx(0.5)
    assert row.spent_at_tick == Decimal("1.000000")
