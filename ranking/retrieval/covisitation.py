"""Baselines (pure numpy): item-to-item co-visitation and popularity.

Co-visitation: two distinct products interacted with in the same session co-occur once
per session (whatever the counts inside it); the pair weight is normalised by the items'
session counts, c(a, b) / sqrt(n(a) · n(b)) (cosine), so that popular items do not
co-occur with everything. A shopper's candidates are the sum over their recent items
(newest first, weight 0.7^rank) of the neighbours' weights, topped up by popularity."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .dataset import Interaction, sessions_of

RECENCY_DECAY = 0.7
MAX_NEIGHBOURS = 200


@dataclass(frozen=True)
class CoVisitation:
    neighbours: dict[str, tuple[tuple[str, float], ...]]  # item -> (neighbour, weight), best first
    popular: tuple[str, ...]

    def recommend(self, recent: Sequence[str], k: int, *, max_recent: int = 20) -> list[str]:
        scores: dict[str, float] = defaultdict(float)
        for rank, item in enumerate(list(dict.fromkeys(recent))[:max_recent]):
            w = RECENCY_DECAY**rank
            for other, s in self.neighbours.get(item, ()):
                scores[other] += w * s
        ranked = [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))][:k]
        if len(ranked) < k:
            seen = set(ranked)
            ranked += [p for p in self.popular if p not in seen][: k - len(ranked)]
        return ranked


def covisitation_fit(interactions: Sequence[Interaction], *, max_neighbours: int = MAX_NEIGHBOURS) -> CoVisitation:
    pair: Counter[tuple[str, str]] = Counter()
    n: Counter[str] = Counter()
    for session in sessions_of(interactions):
        items = sorted({x.product_id for x in session})
        n.update(items)
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                pair[(a, b)] += 1
    nb: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (a, b), c in pair.items():
        w = c / math.sqrt(n[a] * n[b])
        nb[a].append((b, w))
        nb[b].append((a, w))
    neighbours = {a: tuple(sorted(lst, key=lambda kv: (-kv[1], kv[0]))[:max_neighbours]) for a, lst in nb.items()}
    return CoVisitation(neighbours=neighbours, popular=popularity_fit(interactions))


def popularity_fit(interactions: Sequence[Interaction]) -> tuple[str, ...]:
    """Products by number of interactions (ties by id): the non-personal baseline."""
    counts = Counter(x.product_id for x in interactions)
    return tuple(p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
