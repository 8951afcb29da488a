"""Even pacing: active time and expected traffic from dayparts (time zone, schedule,
traffic shape), the controller step and its rate estimate, compressed days of diurnal
traffic (smooth spend at 60 s ticks, lumpy clicks at 300 s ticks) landing within ±5 % of
the daily budget and spreading it over the active day, and the persisted state moved
atomically by pacing_tick under an injected clock."""

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
    controller, spent, spent_last, last_tick = pacing.Controller(), Decimal(0), Decimal(0), DAY
    for minute in range(24 * 60):
        now = DAY + timedelta(minutes=minute)
        if minute:
            controller = pacing.tick(controller, windows=windows, at=now, last_tick_at=last_tick, budget=budget,
                                     spent=spent, spent_at_last_tick=spent_last)  # fmt: skip
            spent_last, last_tick = spent, now
        throttle = controller.throttle
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


# --- the rate estimate, traffic shape and lumpy spend (ADR 0041 addendum) ----------------

# traffic per UTC hour of bench/pacing: trough ~01:00, peak ~13:00 (mean 1)
BENCH_SHAPE = tuple(
    sum(1.0 + 0.8 * math.sin(2 * math.pi * ((h + k / 60) / 24 - 0.3)) for k in range(60)) / 60 for h in range(24)
)


def test_expected_traffic_weights_seconds_by_the_utc_hour_shape() -> None:
    shape = (1.0,) * 12 + (3.0,) * 12
    day = pacing.active_windows((), "UTC", DAY, DAY - timedelta(days=1), None)
    # 10:30 UTC: 10.5 h of weight 1 before; 1.5 h of weight 1 and 12 h of weight 3 after
    assert pacing.active_traffic(day, DAY + timedelta(hours=10, minutes=30), shape) == (10.5 * 3600, 37.5 * 3600)
    # the shape is the platform's (UTC) traffic: a Berlin 11:00-14:00 CET daypart is 10-13 UTC
    berlin = pacing.day_start_of(DAY + timedelta(hours=12), "Europe/Berlin")
    parts = (Daypart(days=(2,), start=time(11), end=time(14)),)
    windows = pacing.active_windows(parts, "Europe/Berlin", berlin, DAY - timedelta(days=1), None)
    assert pacing.active_traffic(windows, DAY, shape) == (0.0, (2 * 1 + 1 * 3) * 3600.0)
    # the last 1.5 active hours of the day: weight 3
    assert pacing.tail_traffic(day, 5400.0, shape) == 3 * 5400.0
    # the tail runs back across dayparts: 09-10 and 20-21, last 90 minutes = 60 min at 3 + 30 min at 1
    two = pacing.active_windows(
        (Daypart(days=(2,), start=time(9), end=time(10)), Daypart(days=(2,), start=time(20), end=time(21))),
        "UTC",
        DAY,
        DAY,
        None,
    )
    assert pacing.tail_traffic(two, 5400.0, shape) == 3 * 3600.0 + 1 * 1800.0
    # uniform traffic = active seconds
    assert pacing.active_traffic(day, DAY + timedelta(hours=6), pacing.UNIFORM) == pacing.active_seconds(
        day, DAY + timedelta(hours=6)
    )


def test_the_step_sets_the_throttle_from_the_remaining_budget_over_the_estimated_full_rate() -> None:
    # given an estimate: 1.00 spent per 1000 throttle-weighted traffic units, throttle 0.5
    state = pacing.Controller(throttle=0.5, spend_avg=1.0, exposure_avg=1000.0)
    step: dict[str, Any] = dict(
        budget=Decimal(30),
        spent_at_last_tick=Decimal(10),
        active_since_last_tick=3600.0,
        traffic_since_last_tick=3600.0,
        traffic_remaining=100000.0,
        finish_early=4000.0,
        time_constant=3600.0,
    )
    # when 0.50 was spent in the last hour (one time constant: the old sums weigh 1/e)
    new = pacing.next_state(state, spent=Decimal("10.5"), **step)
    # then the sums decay and add the interval, and the throttle = wanted ÷ full rate
    spend_avg = 1.0 / math.e + 0.5
    exposure_avg = 1000.0 / math.e + 0.5 * 3600.0
    assert new.spend_avg == pytest.approx(spend_avg)
    assert new.exposure_avg == pytest.approx(exposure_avg)
    assert new.throttle == pytest.approx((19.5 / 96000.0) / (spend_avg / exposure_avg))  # ≈ 0.51
    # no spend at all yet → opened by the max step; budget used up → minimum; past the
    # finish-early point → open; no active time since the last tick → unchanged
    assert pacing.next_state(pacing.Controller(throttle=0.3), spent=Decimal(10), **step).throttle == 0.6
    assert pacing.next_state(state, spent=Decimal(100), **step).throttle == pacing.THROTTLE_MIN
    assert pacing.next_state(state, spent=Decimal(20), **{**step, "traffic_remaining": 3999.0}).throttle == 1.0
    assert pacing.next_state(state, spent=Decimal(20), **{**step, "active_since_last_tick": 0.0}) == state
    # a far-off target is approached by at most ×2 / ÷2 per tick
    assert pacing.next_state(state, spent=Decimal("10.5"), **{**step, "budget": Decimal(11)}).throttle == 0.25


def test_one_lumpy_click_moves_the_throttle_a_little_instead_of_halving_it() -> None:
    # given a campaign at equilibrium: its estimate says throttle 0.4 spends the wanted rate
    wanted = 30.0 / 36000.0
    state = pacing.Controller(throttle=0.4, spend_avg=wanted / 0.4 * (0.4 * 3600.0), exposure_avg=0.4 * 3600.0)
    step: dict[str, Any] = dict(
        budget=Decimal(40),
        spent_at_last_tick=Decimal(10),
        active_since_last_tick=300.0,
        traffic_since_last_tick=300.0,
        traffic_remaining=36300.0,
        finish_early=300.0,
    )
    # when one 0.45 click lands in a 300 s tick, or none
    clicked = pacing.next_state(state, spent=Decimal("10.45"), **step).throttle
    quiet = pacing.next_state(state, spent=Decimal(10), **step).throttle
    # then the throttle moves by under a tenth either way (the estimate holds an hour of spend) …
    assert clicked == pytest.approx(0.37, abs=0.01) and quiet == pytest.approx(0.436, abs=0.01)
    # … where the memoryless step of ADR 0041 nearly halved it, or doubled it
    old: dict[str, Any] = dict(
        budget=Decimal(40),
        spent_at_last_tick=Decimal(10),
        active_since_last_tick=300.0,
        active_remaining=36300.0,
        finish_early=300.0,
    )
    memoryless = pacing.next_throttle(0.4, spent=Decimal("10.45"), **old)
    assert memoryless == pytest.approx(0.4 * wanted * (29.55 / 30) / (0.45 / 300))  # ≈ 0.22
    assert pacing.next_throttle(0.4, spent=Decimal(10), **old) == 0.8


def simulate_lumpy_day(
    *,
    seed: int,
    shape: tuple[float, ...] = pacing.UNIFORM,
    memoryless: bool = False,
    dayparts: tuple[Daypart, ...] = (),
) -> tuple[float, float | None, float]:
    """bench/pacing in miniature: 300 s ticks, ~12 requests per step on the bench's diurnal
    curve, a 0.6 chance to win a slot, 10 % clicks of 0.35–0.55 each against a 40.00 budget
    (~2.5× demand). Returns (spend ÷ budget, hour the budget was used up or None, share of
    the budget spent by the midpoint of the active window)."""
    rng = random.Random(seed)
    budget, step = Decimal(40), 300
    windows = pacing.active_windows(dayparts, "UTC", DAY, DAY - timedelta(days=1), None)
    midpoint = windows[0][0] + (windows[-1][1] - windows[0][0]) / 2
    controller, spent, spent_last, last_tick = pacing.Controller(), Decimal(0), Decimal(0), DAY
    used_up, by_mid = None, None
    for s in range(86400 // step):
        now = DAY + timedelta(seconds=s * step)
        if s and memoryless:
            before_now, after_now = pacing.active_seconds(windows, now)
            before_last, _ = pacing.active_seconds(windows, last_tick)
            throttle = pacing.next_throttle(
                controller.throttle,
                budget=budget,
                spent=spent,
                spent_at_last_tick=spent_last,
                active_since_last_tick=before_now - before_last,
                active_remaining=after_now,
                finish_early=pacing.FINISH_EARLY_SHARE * (before_now + after_now),
            )
            controller, spent_last, last_tick = pacing.Controller(throttle=throttle), spent, now
        elif s:
            controller = pacing.tick(
                controller,
                windows=windows,
                at=now,
                last_tick_at=last_tick,
                budget=budget,
                spent=spent,
                spent_at_last_tick=spent_last,
                shape=shape,
            )
            spent_last, last_tick = spent, now
        if by_mid is None and now >= midpoint:
            by_mid = float(spent / budget)
        if not any(a <= now < b for a, b in windows):
            continue
        hour = s * step / 3600
        for _ in range(max(0, round(rng.gauss(12 * (1.0 + 0.8 * math.sin(2 * math.pi * (hour / 24 - 0.3))), 1.0)))):
            if spent >= budget:
                break  # eligibility: the daily budget is used up
            if rng.random() < controller.throttle and rng.random() < 0.6 and rng.random() < 0.1:
                spent += Decimal(str(round(rng.uniform(0.35, 0.55), 2)))
        if used_up is None and spent >= budget:
            used_up = hour + step / 3600
    return float(spent / budget), used_up, by_mid if by_mid is not None else float(spent / budget)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lumpy_clicks_at_300_s_ticks_spread_over_the_day(seed: int) -> None:
    # given the memoryless step: the budget is gone by the afternoon
    ratio, used_up, _ = simulate_lumpy_day(seed=seed, memoryless=True)
    assert used_up is not None and used_up < 18.0, used_up
    # when the controller keeps its rate estimate: within 5 % (≤ one click over), spent out
    # in the last two hours at the earliest, about half by noon (uniform time)
    ratio, used_up, by_mid = simulate_lumpy_day(seed=seed)
    assert 0.95 <= ratio <= 1.0 + 0.55 / 40, ratio
    assert used_up is None or used_up >= 22.0, used_up
    assert 0.45 <= by_mid <= 0.62, by_mid


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_with_a_traffic_shape_spend_follows_the_traffic(seed: int) -> None:
    # given the day's hourly traffic as the forecast: 42 % of the traffic comes before noon
    ratio, used_up, by_mid = simulate_lumpy_day(seed=seed, shape=BENCH_SHAPE)
    # then the budget lands and about that share (plus the 5 % finished early) is spent by noon
    assert 0.95 <= ratio <= 1.0 + 0.55 / 40, ratio
    assert used_up is None or used_up >= 21.0, used_up
    assert 0.40 <= by_mid <= 0.52, by_mid


def test_a_dayparted_lumpy_day_spreads_over_its_window() -> None:
    ratio, used_up, by_mid = simulate_lumpy_day(
        seed=4, shape=BENCH_SHAPE, dayparts=(Daypart(days=(2,), start=time(8), end=time(20)),)
    )
    assert 0.95 <= ratio <= 1.0 + 0.55 / 40, ratio
    assert used_up is None or used_up >= 18.5, used_up
    assert 0.45 <= by_mid <= 0.62, by_mid  # 53 % of the window's traffic comes before 14:00


def test_pacing_tick_persists_the_rate_estimate_weighted_by_the_traffic_shape(world: Any, settings: Any) -> None:
    # given an even campaign and a traffic shape three times heavier from 12:00 UTC
    settings.DELIVERY_PACING_INTERVAL_SECONDS = 60
    settings.DELIVERY_PACING_TRAFFIC_SHAPE = (1.0,) * 12 + (3.0,) * 12
    from django.db import transaction

    from campaigns import services as campaigns

    from .conftest import NOW

    adv = world.advertiser()
    camp = world.campaign(adv, pacing="even", daily_budget=Decimal("24.00"))
    world.creative(adv, camp)
    t0 = NOW.replace(hour=13, minute=0, second=0)
    assert pacing_tick(at=t0) == 1
    row = PacingState.objects.get(campaign_id=camp)
    assert (row.throttle, row.spend_avg, row.exposure_avg) == (1.0, 0.0, 0.0)
    # when 0.05 is spent in the next minute, at throttle 1 on weight-3 traffic
    with transaction.atomic():
        campaigns.budget_charge(campaign_id=camp, amount=Decimal("0.05"), at=t0 + timedelta(seconds=40))
    assert pacing_tick(at=t0 + timedelta(seconds=60)) == 1
    row.refresh_from_db()
    # then the estimate holds that minute: 0.05 per 180 traffic units at full throttle
    assert (row.spend_avg, row.exposure_avg) == (pytest.approx(0.05), pytest.approx(180.0))
    # wanted: 23.95 over the rest of the day's traffic (10:59 h at weight 3) less the last
    # 5 % of the day's time (72 min at weight 3)
    wanted = 23.95 / ((10 * 3600 + 59 * 60 - 72 * 60) * 3.0)
    assert row.throttle == pytest.approx(wanted / (0.05 / 180.0))  # ≈ 0.82
    # and a quiet minute decays the sums by exp(-60 s / TIME_CONSTANT_S) and adds the exposure
    throttle = row.throttle
    assert pacing_tick(at=t0 + timedelta(seconds=120)) == 1
    row.refresh_from_db()
    decay = math.exp(-60 / pacing.TIME_CONSTANT_S)
    assert row.spend_avg == pytest.approx(0.05 * decay)
    assert row.exposure_avg == pytest.approx(180 * decay + throttle * 180)
