"""Writes of ad tracking: issuing tracking URLs for served ads, recording impressions and
clicks (once per token, billed through campaigns.budget_charge), attributing conversions.

CONTRACT (docs/contracts.md): `ServedAd` and `tracking_urls` are fixed; the tracking issue
implements them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class ServedAd:
    """One winner of a /rank decision, as the token carries it."""

    request_id: str
    user_id: str
    creative_id: int
    campaign_id: int
    advertiser_id: int
    placement: str
    position: int
    pricing_model: str  # "cpc" | "cpm" | "cpa"
    # clearing price in the bid unit: per click (cpc), per 1000 impressions (cpm), per conversion (cpa)
    price: Decimal
    currency: str
    landing_url: str
    served_at: datetime
    segment: str | None = None
    variant: int | None = None


def tracking_urls(*, ad: ServedAd) -> tuple[str, str]:
    """(impression_url, click_url): site-relative `/track/impression/<token>` and
    `/track/click/<token>`, each token signed, expiring, bound to request, creative and user."""
    raise NotImplementedError("tracking issue")
