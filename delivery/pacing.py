"""Even pacing as a feedback controller on each campaign's delivery probability
(throttle), ADR 0041 (+ addendum). Pure functions: the service persists the state
atomically.

The controller keeps an exponentially weighted estimate of what the campaign spends per
unit of traffic at full throttle (spend ÷ throttle-weighted traffic over roughly the last
TIME_CONSTANT_S active seconds: a ratio of sums, so one lumpy click moves it by a little
instead of resetting the throttle). Every tick it sets the throttle to the rate that would
spend the rest of today's budget over the rest of the active day's expected traffic
(look-ahead) divided by that estimate, bounded per tick. Traffic is weighted by an hourly
shape (a forecast; uniform = time-even), so "even" means even relative to opportunities.
asap campaigns are never throttled."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from campaigns.selectors import Daypart

from .eligibility import local_time

THROTTLE_MIN = 0.002
THROTTLE_START = 1.0  # a new day starts open; the first ticks find the rate
MAX_STEP = 2.0  # the throttle changes by at most ×2 or ÷2 per tick
# Aim to finish the budget this share of the active day's time early: traffic at the end of
# the day may be too thin to catch up a deficit (measured in tests/delivery/test_pacing.py).
FINISH_EARLY_SHARE = 0.05
# Active seconds over which the full-throttle spend rate is averaged: long enough that a
# day of ~100 clicks gives a usable estimate, short enough to follow competitors leaving
# the auction (bench/pacing, docs/benchmarks/rank.md).
TIME_CONSTANT_S = 3600.0
UNIFORM: tuple[float, ...] = (1.0,) * 24


@dataclass(frozen=True)
class Controller:
    """One campaign's controller state on its local day."""

    throttle: float = THROTTLE_START
    spend_avg: float = 0.0  # exponentially weighted spend
    exposure_avg: float = 0.0  # exponentially weighted throttle × traffic weight


def active_windows(
    dayparts: Sequence[Daypart], tz: str, day_start: datetime, start: datetime, end: datetime | None
) -> list[tuple[datetime, datetime]]:
    """The campaign's active [from, to) intervals on the local day beginning at `day_start`
    (a tz-aware local midnight), clipped to the campaign's schedule."""
    next_day = (day_start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)  # wall clock
    if not dayparts:
        windows = [(day_start, next_day)]
    else:
        weekday = day_start.weekday()
        windows = []
        for p in dayparts:
            if weekday not in p.days:
                continue
            a = day_start.replace(hour=p.start.hour, minute=p.start.minute)
            b = next_day if p.end == time.max else day_start.replace(hour=p.end.hour, minute=p.end.minute)
            windows.append((a, b))
        windows.sort()
    out = []
    for a, b in windows:
        a2 = max(a, start)
        b2 = b if end is None else min(b, end)
        if a2 < b2:
            out.append((a2, b2))
    return out


def day_start_of(at: datetime, tz: str) -> datetime:
    return local_time(at, tz).replace(hour=0, minute=0, second=0, microsecond=0)


def active_seconds(windows: Sequence[tuple[datetime, datetime]], at: datetime) -> tuple[float, float]:
    """(active seconds before `at`, active seconds from `at` to the end of the day)."""
    return active_traffic(windows, at, UNIFORM)


def active_traffic(
    windows: Sequence[tuple[datetime, datetime]], at: datetime, shape: Sequence[float]
) -> tuple[float, float]:
    """(expected traffic before `at`, from `at` to the end of the day) in the active
    windows: seconds weighted by `shape[UTC hour]` (24 weights; all 1.0 = seconds). The
    shape is the platform's traffic, so it is indexed in UTC whatever the campaign's zone."""
    before = after = 0.0
    for a, b in windows:
        if at <= a:
            after += _weighted(a, b, shape)
        elif at >= b:
            before += _weighted(a, b, shape)
        else:
            before += _weighted(a, at, shape)
            after += _weighted(at, b, shape)
    return before, after


def _weighted(a: datetime, b: datetime, shape: Sequence[float]) -> float:
    if all(w == shape[0] for w in shape):
        return shape[0] * (b - a).total_seconds()
    total, t = 0.0, a.astimezone(UTC)
    end = b.astimezone(UTC)
    while t < end:
        nxt = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        total += shape[t.hour] * (nxt - t).total_seconds()
        t = nxt
    return total


def next_state(
    state: Controller,
    *,
    budget: Decimal,
    spent: Decimal,
    spent_at_last_tick: Decimal,
    active_since_last_tick: float,
    traffic_since_last_tick: float,
    traffic_remaining: float,
    finish_early: float = 0.0,
    time_constant: float = TIME_CONSTANT_S,
) -> Controller:
    """The controller step. `active_since_last_tick`: active seconds between the ticks;
    `traffic_since_last_tick` / `traffic_remaining`: expected traffic (shape-weighted
    active seconds, `active_traffic`) between the ticks and from now to the end of the
    active day; `finish_early`: traffic before the end of the active day the budget should
    be spent by."""
    if active_since_last_tick <= 0:
        return state
    decay = math.exp(-active_since_last_tick / time_constant)
    spend_avg = state.spend_avg * decay + float(spent - spent_at_last_tick)
    exposure_avg = state.exposure_avg * decay + state.throttle * traffic_since_last_tick
    remaining = float(budget - spent)
    horizon = traffic_remaining - finish_early
    if remaining <= 0:
        throttle = THROTTLE_MIN
    elif horizon <= 0:
        throttle = 1.0
    elif spend_avg <= 0 or exposure_avg <= 0:
        throttle = state.throttle * MAX_STEP  # nothing spent lately: open up
    else:
        wanted = remaining / horizon  # spend per unit of traffic that lands on the budget
        full = spend_avg / exposure_avg  # spend per unit of traffic at throttle 1
        throttle = min(state.throttle * MAX_STEP, max(state.throttle / MAX_STEP, wanted / full))
    throttle = min(1.0, max(THROTTLE_MIN, throttle))
    return Controller(throttle=throttle, spend_avg=spend_avg, exposure_avg=exposure_avg)


def tick(
    state: Controller,
    *,
    windows: Sequence[tuple[datetime, datetime]],
    at: datetime,
    last_tick_at: datetime,
    budget: Decimal,
    spent: Decimal,
    spent_at_last_tick: Decimal,
    shape: Sequence[float] = UNIFORM,
) -> Controller:
    """`next_state` between two ticks of the campaign's local day (`windows`), aiming to
    spend the budget FINISH_EARLY_SHARE of the active day's time before its end."""
    before_now, after_now = active_seconds(windows, at)
    before_last, _ = active_seconds(windows, last_tick_at)
    traffic_now, traffic_after = active_traffic(windows, at, shape)
    traffic_last, _ = active_traffic(windows, last_tick_at, shape)
    return next_state(
        state,
        budget=budget,
        spent=spent,
        spent_at_last_tick=spent_at_last_tick,
        active_since_last_tick=max(0.0, before_now - before_last),
        traffic_since_last_tick=max(0.0, traffic_now - traffic_last),
        traffic_remaining=traffic_after,
        finish_early=tail_traffic(windows, FINISH_EARLY_SHARE * (before_now + after_now), shape),
        time_constant=TIME_CONSTANT_S,
    )


def tail_traffic(windows: Sequence[tuple[datetime, datetime]], seconds: float, shape: Sequence[float]) -> float:
    """Expected traffic in the last `seconds` active seconds of the day."""
    total = 0.0
    for a, b in reversed(windows):
        if seconds <= 0:
            break
        start = max(a, b - timedelta(seconds=seconds))
        total += _weighted(start, b, shape)
        seconds -= (b - start).total_seconds()
    return total


def next_throttle(
    throttle: float,
    *,
    budget: Decimal,
    spent: Decimal,
    spent_at_last_tick: Decimal,
    active_since_last_tick: float,
    active_remaining: float,
    finish_early: float = 0.0,
) -> float:
    """The memoryless step of ADR 0041 (the estimate reset every tick): `next_state` with a
    vanishing time constant on uniform traffic."""
    return next_state(
        Controller(throttle=throttle),
        budget=budget,
        spent=spent,
        spent_at_last_tick=spent_at_last_tick,
        active_since_last_tick=active_since_last_tick,
        traffic_since_last_tick=active_since_last_tick,
        traffic_remaining=active_remaining,
        finish_early=finish_early,
        time_constant=1e-9,
    ).throttle
