"""Even pacing as a feedback controller on each campaign's delivery probability
(throttle), ADR 0041. Pure functions: the service persists the state atomically.

Every tick the controller compares the spend rate since the last tick with the rate that
would spend the rest of today's budget evenly over the campaign's remaining active time
(dayparts, schedule) and scales the throttle by their ratio (bounded per tick). Being
behind raises the throttle toward 1, being ahead lowers it; near the end of the active
day the required rate grows, so leftover budget is caught up. asap campaigns are never
throttled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal

from campaigns.selectors import Daypart

from .eligibility import local_time

THROTTLE_MIN = 0.002
THROTTLE_START = 1.0  # a new day starts open; the first ticks find the rate
MAX_STEP = 2.0  # the throttle changes by at most ×2 or ÷2 per tick
# Aim to finish the budget this share of the active day early: traffic at the end of the
# day may be too thin to catch up a deficit (measured in tests/delivery/test_pacing.py).
FINISH_EARLY_SHARE = 0.05


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
    before = after = 0.0
    for a, b in windows:
        if at <= a:
            after += (b - a).total_seconds()
        elif at >= b:
            before += (b - a).total_seconds()
        else:
            before += (at - a).total_seconds()
            after += (b - at).total_seconds()
    return before, after


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
    """The controller step. `active_since_last_tick`: active seconds between the ticks;
    `active_remaining`: active seconds left today; `finish_early`: seconds before the end
    of the active day the budget should be spent by."""
    remaining = float(budget - spent)
    if remaining <= 0:
        return THROTTLE_MIN
    horizon = active_remaining - finish_early
    if horizon <= 0:
        return 1.0
    if active_since_last_tick <= 0:
        return throttle
    wanted = remaining / horizon  # spend per second that lands on the budget
    observed = float(spent - spent_at_last_tick) / active_since_last_tick
    ratio = MAX_STEP if observed <= 0 else wanted / observed
    ratio = min(MAX_STEP, max(1.0 / MAX_STEP, ratio))
    return min(1.0, max(THROTTLE_MIN, throttle * ratio))
