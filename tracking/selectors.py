"""Reads of ad tracking used on the /rank hot path.

CONTRACT (docs/contracts.md): signatures fixed; the tracking issue implements them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adplatform.db.prepared import C_TIMESTAMPTZ, fetch_prepared


@dataclass(frozen=True)
class RecentImpression:
    campaign_id: int
    creative_id: int
    at: datetime


_RECENT_SQL = (
    "SELECT campaign_id, creative_id, at FROM tracking_recent_impression"
    " WHERE user_key = %s AND at >= %s ORDER BY at DESC"
)


def recent_impressions(*, user_id: str, since: datetime) -> list[RecentImpression]:
    """The shopper's recorded impressions since `since` (inclusive; frequency caps), newest
    first. Current within the request that follows the impression beacon (the row commits
    with the AdImpressed event). Empty for shoppers without consent (no frequency profile)."""
    # plain SQL, prepared, on the raw connection: one index-only scan per /rank
    rows = fetch_prepared(_RECENT_SQL, [user_id, since], loaders=C_TIMESTAMPTZ)
    return [RecentImpression(campaign_id, creative_id, at) for campaign_id, creative_id, at in rows]
