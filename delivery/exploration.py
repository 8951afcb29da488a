"""Bounded exploration for creatives with little data (Thompson sampling on their click
rate, ADR 0042) and the per-shopper-segment variant bandit of dynamic creatives.

Both take the caller's `random.Random`, so decisions replay exactly under a seed."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Beta prior around the model's p_click, worth this many impressions: the sample follows
# the model until the creative's own data outweighs it.
PRIOR_STRENGTH = 50.0
VARIANT_PRIOR = (1.0, 30.0)  # Beta(α, β) before a variant has data (prior CTR ≈ 3 %)


@dataclass(frozen=True)
class Counts:
    impressions: int = 0
    clicks: int = 0


def thompson_ctr(rng: random.Random, counts: Counts, prior_p: float) -> float:
    """One posterior draw of a creative's click rate: Beta(prior + clicks, prior + misses)."""
    p = min(max(prior_p, 1e-4), 0.9999)
    clicks = min(counts.clicks, counts.impressions)
    a = p * PRIOR_STRENGTH + clicks
    b = (1.0 - p) * PRIOR_STRENGTH + (counts.impressions - clicks)
    return rng.betavariate(a, b)


def explore_now(rng: random.Random, rate: float) -> bool:
    """Whether this response may carry an exploratory ad (at most one; `rate` bounds the
    share of responses that do)."""
    return rate > 0 and rng.random() < rate


def pick_explorer(
    rng: random.Random, new_ids: Sequence[int], p_click: Mapping[int, float], counts: Mapping[int, Counts]
) -> tuple[int, float] | None:
    """Among new (little-data) candidates, the one with the highest Thompson draw and its
    drawn click rate."""
    best: tuple[int, float] | None = None
    for cid in sorted(new_ids):
        draw = thompson_ctr(rng, counts.get(cid, Counts()), p_click[cid])
        if best is None or draw > best[1]:
            best = (cid, draw)
    return best


def pick_variant(
    rng: random.Random, options: Sequence[int | None], counts: Mapping[tuple[int | None, str], Counts], segment: str
) -> int | None:
    """Thompson sampling over a creative's renderable variants (None = the base creative)
    with the shopper's segment's counts ("" for shoppers without one)."""
    best: tuple[float, int] | None = None
    choice: int | None = None
    for i, option in enumerate(options):
        c = counts.get((option, segment), Counts())
        clicks = min(c.clicks, c.impressions)
        draw = rng.betavariate(VARIANT_PRIOR[0] + clicks, VARIANT_PRIOR[1] + c.impressions - clicks)
        if best is None or (draw, -i) > best:
            best, choice = (draw, -i), option
    return choice
