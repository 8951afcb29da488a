"""Baselines (pure numpy): item-to-item co-visitation and popularity.

Co-visitation: two distinct products a shopper interacted with in the same session (or,
with `window_seconds`, within that time of each other) co-occur once per session / per
shopper, whatever the counts inside it; the pair weight is normalised by the items'
counts, c(a, b) / sqrt(n(a) · n(b)) (cosine), so that popular items do not co-occur with
everything. A shopper's candidates are the sum over their recent items (newest first,
weight 0.7^rank) of the neighbours' weights — plus `self_weight` for the recent items
themselves (shoppers come back to what they viewed) — topped up by popularity.

The tuned variant (`covisitation_strong_fit`: 7-day window across sessions, self weight 1) is the baseline
the two-tower model has to beat; the plain session variant is reported beside it."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .dataset import Interaction, sessions_of

RECENCY_DECAY = 0.7
MAX_NEIGHBOURS = 200
STRONG_WINDOW_SECONDS = 7 * 86400.0
STRONG_SELF_WEIGHT = 1.0


@dataclass(frozen=True)
class CoVisitation:
    neighbours: dict[str, tuple[tuple[str, float], ...]]  # item -> (neighbour, weight), best first
    popular: tuple[str, ...]
    self_weight: float = 0.0

    def recommend(self, recent: Sequence[str], k: int, *, max_recent: int = 20) -> list[str]:
        scores: dict[str, float] = defaultdict(float)
        for rank, item in enumerate(list(dict.fromkeys(recent))[:max_recent]):
            w = RECENCY_DECAY**rank
            if self.self_weight:
                scores[item] += w * self.self_weight
            for other, s in self.neighbours.get(item, ()):
                scores[other] += w * s
        ranked = [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))][:k]
        if len(ranked) < k:
            seen = set(ranked)
            ranked += [p for p in self.popular if p not in seen][: k - len(ranked)]
        return ranked


def covisitation_fit(
    interactions: Sequence[Interaction],
    *,
    window_seconds: float | None = None,
    self_weight: float = 0.0,
    max_neighbours: int = MAX_NEIGHBOURS,
) -> CoVisitation:
    pair: Counter[tuple[str, str]] = Counter()
    n: Counter[str] = Counter()
    if window_seconds is None:
        for session in sessions_of(interactions):
            items = sorted({x.product_id for x in session})
            n.update(items)
            for i, a in enumerate(items):
                for b in items[i + 1 :]:
                    pair[(a, b)] += 1
    else:
        by_user: dict[str, list[Interaction]] = defaultdict(list)
        for x in interactions:
            by_user[x.user_id].append(x)
        for xs in by_user.values():
            n.update({x.product_id for x in xs})
            seen: set[tuple[str, str]] = set()
            for i, x in enumerate(xs):
                for y in xs[i + 1 :]:
                    if y.at - x.at > window_seconds:
                        break
                    if x.product_id != y.product_id:
                        key = (min(x.product_id, y.product_id), max(x.product_id, y.product_id))
                        if key not in seen:
                            seen.add(key)
                            pair[key] += 1
    nb: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (a, b), c in pair.items():
        w = c / math.sqrt(n[a] * n[b])
        nb[a].append((b, w))
        nb[b].append((a, w))
    neighbours = {a: tuple(sorted(lst, key=lambda kv: (-kv[1], kv[0]))[:max_neighbours]) for a, lst in nb.items()}
    return CoVisitation(neighbours=neighbours, popular=popularity_fit(interactions), self_weight=self_weight)


def popularity_fit(interactions: Sequence[Interaction]) -> tuple[str, ...]:
    """Products by number of interactions (ties by id): the non-personal baseline."""
    counts = Counter(x.product_id for x in interactions)
    return tuple(p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def covisitation_strong_fit(interactions: Sequence[Interaction]) -> CoVisitation:
    """The tuned baseline: 7-day co-occurrence window across sessions, recent items count too."""
    return covisitation_fit(interactions, window_seconds=STRONG_WINDOW_SECONDS, self_weight=STRONG_SELF_WEIGHT)
