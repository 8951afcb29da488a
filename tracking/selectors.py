"""Reads of ad tracking used on the /rank hot path.

CONTRACT (docs/contracts.md): signatures fixed; the tracking issue implements them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RecentImpression:
    campaign_id: int
    creative_id: int
    at: datetime


def recent_impressions(*, user_id: str, since: datetime) -> list[RecentImpression]:
    """The shopper's recorded impressions since `since` (frequency caps), newest first.
    Current within the request that follows the impression beacon."""
    return []
