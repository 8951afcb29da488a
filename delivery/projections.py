"""The `delivery_stats` projection: impressions and clicks per creative × variant ×
segment (from AdImpressed / AdClicked), read by exploration (Thompson sampling), the
variant bandit and the "popular" policy. Aggregates only: nothing per shopper."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import connection

from adplatform.eventlog.projections import Projection, register_projection
from adplatform.eventlog.selectors import StoredEvent
from ranking.events import AD_CLICKED, AD_IMPRESSED

_UPSERT = """
INSERT INTO delivery_creative_stats (creative_id, variant, segment, impressions, clicks)
SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::bigint[], %s::bigint[])
ON CONFLICT (creative_id, variant, segment) DO UPDATE SET
    impressions = delivery_creative_stats.impressions + EXCLUDED.impressions,
    clicks = delivery_creative_stats.clicks + EXCLUDED.clicks
"""


def _key(data: dict[str, Any]) -> tuple[int, int, str]:
    variant = data.get("variant")
    return int(data["creative_id"]), int(variant) if isinstance(variant, int) else -1, str(data.get("segment") or "")


@register_projection
class CreativeStatsProjection(Projection):
    name = "delivery_stats"
    event_types = frozenset({AD_IMPRESSED.name, AD_CLICKED.name})

    def apply(self, events: list[StoredEvent]) -> None:
        imps: Counter[tuple[int, int, str]] = Counter()
        clicks: Counter[tuple[int, int, str]] = Counter()
        for e in events:
            (imps if e.type == AD_IMPRESSED.name else clicks)[_key(e.data)] += 1
        keys = sorted(set(imps) | set(clicks))
        if not keys:
            return
        with connection.cursor() as cur:
            cur.execute(
                _UPSERT,
                [
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    [imps[k] for k in keys],
                    [clicks[k] for k in keys],
                ],
            )

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE delivery_creative_stats")
