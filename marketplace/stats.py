"""Confidence intervals for the simulator's per-policy report (pure numpy).

Rates over independent trials (CTR = clicks / impressions) get a Wilson score interval.
Because one shopper's impressions are correlated (tastes, sessions), every ratio also gets
a bootstrap interval that resamples whole shoppers (the unit of randomisation), and a
policy's lift over the baseline is the bootstrap of the difference of two independent
shopper groups.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
Values = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """Wilson score interval for a binomial proportion; (0, 0, 1) with no trials."""
    if trials <= 0:
        return Interval(0.0, 0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return np.asarray(out, dtype=np.float64)


def bootstrap_indexes(n: int, draws: int, seed: int) -> np.ndarray:
    """`draws` resamples (with replacement) of n units, as a (draws, n) index array."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, max(n, 1), size=(draws, n))


def ratio_ci(num: Values, den: Values, *, draws: int = 1000, seed: int = 0, level: float = 0.95) -> Interval:
    """Σnum / Σden with a percentile bootstrap over units (shoppers): each resample draws
    units with replacement and recomputes the ratio of sums."""
    a, b = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    value = float(a.sum() / b.sum()) if b.sum() > 0 else 0.0
    if len(a) == 0:
        return Interval(value, value, value)
    idx = bootstrap_indexes(len(a), draws, seed)
    stats = _ratio(a[idx].sum(axis=1), b[idx].sum(axis=1))
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(lo), float(hi))


def ratio_diff_ci(
    num_a: Values,
    den_a: Values,
    num_b: Values,
    den_b: Values,
    *,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """(Σnum_a/Σden_a) − (Σnum_b/Σden_b) for two independent groups of units, with a
    percentile bootstrap that resamples each group separately."""
    a_n, a_d = np.asarray(num_a, dtype=np.float64), np.asarray(den_a, dtype=np.float64)
    b_n, b_d = np.asarray(num_b, dtype=np.float64), np.asarray(den_b, dtype=np.float64)
    va = float(a_n.sum() / a_d.sum()) if a_d.sum() > 0 else 0.0
    vb = float(b_n.sum() / b_d.sum()) if b_d.sum() > 0 else 0.0
    if len(a_n) == 0 or len(b_n) == 0:
        return Interval(va - vb, va - vb, va - vb)
    ia = bootstrap_indexes(len(a_n), draws, seed)
    ib = bootstrap_indexes(len(b_n), draws, seed + 1)
    diff = _ratio(a_n[ia].sum(axis=1), a_d[ia].sum(axis=1)) - _ratio(b_n[ib].sum(axis=1), b_d[ib].sum(axis=1))
    lo, hi = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return Interval(va - vb, float(lo), float(hi))


def gini(values: Values) -> float:
    """Gini coefficient of non-negative amounts (0: all equal; (n − 1)/n: one unit holds
    everything); 0 when everything is 0."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * (ranks * x).sum() / (n * total) - (n + 1) / n)


def top_share(values: Values, share: float = 0.1) -> float:
    """Share of the total held by the top ⌈share · n⌉ units (at least one)."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    total = float(x.sum())
    if len(x) == 0 or total <= 0:
        return 0.0
    k = max(1, math.ceil(share * len(x) - 1e-9))
    return float(x[:k].sum() / total)


def rows_statistic_ci(
    rows: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """`statistic` of the column sums of `rows` (units × categories, e.g. shoppers ×
    advertisers' impressions), with a percentile bootstrap that resamples whole units."""
    m = np.asarray(rows, dtype=np.float64)
    value = statistic(m.sum(axis=0)) if m.size else 0.0
    if len(m) == 0:
        return Interval(value, value, value)
    idx = bootstrap_indexes(len(m), draws, seed)
    counts = np.zeros((draws, len(m)), dtype=np.float64)
    np.add.at(counts, (np.arange(draws)[:, None], idx), 1.0)
    stats = np.array([statistic(s) for s in counts @ m])
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return Interval(value, float(lo), float(hi))
