"""The `delivery_stats` projection: impressions and clicks per creative × variant ×
segment (from AdImpressed / AdClicked), read by exploration (Thompson sampling), the
variant bandit and the "popular" policy; and per creative × click model, the tracked
impressions that carried the model's p_click, their clicks and the clicks the model
expected (the live calibration, ADR 0062). Aggregates only: nothing per shopper."""

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


_CALIBRATION_UPSERT = """
INSERT INTO delivery_creative_calibration (creative_id, model_version, position, impressions, clicks, expected_clicks)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::bigint[], %s::bigint[], %s::float8[])
ON CONFLICT (creative_id, model_version, position) DO UPDATE SET
    impressions = delivery_creative_calibration.impressions + EXCLUDED.impressions,
    clicks = delivery_creative_calibration.clicks + EXCLUDED.clicks,
    expected_clicks = delivery_creative_calibration.expected_clicks + EXCLUDED.expected_clicks
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
        # (creative, model version, position) → [impressions, clicks, expected clicks], of
        # the ad events whose token carried the model's p_click
        calibration: dict[tuple[int, str, int], list[float]] = {}
        for e in events:
            impression = e.type == AD_IMPRESSED.name
            (imps if impression else clicks)[_key(e.data)] += 1
            p_click, version = e.data.get("p_click"), e.data.get("model_version")
            if isinstance(p_click, int | float) and isinstance(version, str):
                key = (int(e.data["creative_id"]), version, int(e.data.get("position") or 1))
                row = calibration.setdefault(key, [0, 0, 0.0])
                if impression:
                    row[0] += 1
                    row[2] += float(p_click)
                else:
                    row[1] += 1
        keys = sorted(set(imps) | set(clicks))
        if not keys:
            return
        with connection.cursor() as cur:
            if calibration:
                ckeys = sorted(calibration)
                cur.execute(
                    _CALIBRATION_UPSERT,
                    [
                        [k[0] for k in ckeys],
                        [k[1] for k in ckeys],
                        [k[2] for k in ckeys],
                        [int(calibration[k][0]) for k in ckeys],
                        [int(calibration[k][1]) for k in ckeys],
                        [calibration[k][2] for k in ckeys],
                    ],
                )
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
            cur.execute("TRUNCATE delivery_creative_stats, delivery_creative_calibration")
