"""Writes for ad delivery history that did not come through /rank: imported or generated
ad exposures (impressions, clicks, conversions) appended as ranking events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from adplatform.eventlog.services import NewEvent, append_events

from .events import AD_CLICKED, AD_IMPRESSED, CONVERSION_ATTRIBUTED, decision_stream

_EXPOSURE_NS = uuid.UUID("6f1c3c1e-6a4b-4f0e-9a55-0d7f1a2b3c4d")


@dataclass(frozen=True)
class AdExposure:
    """One ad shown to a shopper in imported or generated history.

    `exposure_key` must be stable across re-runs (e.g. "taobao:<row number>"): event ids
    are derived from it, so importing the same history twice stores nothing new."""

    exposure_key: str
    user_id: str
    at: datetime
    creative_id: int
    campaign_id: int
    advertiser_id: int
    placement: str
    position: int = 1
    page_type: str | None = None
    clicked_at: datetime | None = None
    order_id: str | None = None
    converted_at: datetime | None = None
    revenue: Decimal | None = None
    currency: str = "USD"
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExposureImportResult:
    stored: int
    duplicates: int


def exposure_request_id(exposure_key: str) -> str:
    return "hist-" + uuid.uuid5(_EXPOSURE_NS, exposure_key).hex


def _exposure_events(x: AdExposure, source: str) -> list[NewEvent]:
    request_id = exposure_request_id(x.exposure_key)
    stream = decision_stream(request_id)
    base = {
        "request_id": request_id,
        "creative_id": x.creative_id,
        "campaign_id": x.campaign_id,
        "advertiser_id": x.advertiser_id,
        "placement": x.placement,
        "position": x.position,
        "pricing_model": "cpc",
        "charge": "0",
        "currency": x.currency,
        "segment": None,
    }
    if x.page_type is not None:
        base["page_type"] = x.page_type
    if x.context:
        base["context"] = x.context
    meta = {"source": source}
    out = [
        NewEvent(
            type=AD_IMPRESSED.name,
            stream=stream,
            data=dict(base),
            occurred_at=x.at,
            event_id=uuid.uuid5(_EXPOSURE_NS, f"{x.exposure_key}/impression"),
            user_key=x.user_id,
            meta=meta,
        )
    ]
    if x.clicked_at is not None:
        click_id = uuid.uuid5(_EXPOSURE_NS, f"{x.exposure_key}/click")
        out.append(
            NewEvent(
                type=AD_CLICKED.name,
                stream=stream,
                data=dict(base),
                occurred_at=x.clicked_at,
                event_id=click_id,
                user_key=x.user_id,
                meta=meta,
            )
        )
        if x.converted_at is not None and x.revenue is not None:
            conv = {k: v for k, v in base.items() if k not in ("position", "pricing_model")}
            conv.update(order_id=x.order_id or "", revenue=str(x.revenue), click_event_id=str(click_id))
            out.append(
                NewEvent(
                    type=CONVERSION_ATTRIBUTED.name,
                    stream=stream,
                    data=conv,
                    occurred_at=x.converted_at,
                    event_id=uuid.uuid5(_EXPOSURE_NS, f"{x.exposure_key}/conversion"),
                    user_key=x.user_id,
                    meta=meta,
                )
            )
    return out


def ad_exposures_import(*, exposures: Iterable[AdExposure], source: str = "import") -> ExposureImportResult:
    """Append the exposures' AdImpressed / AdClicked / ConversionAttributed events in one
    transaction; idempotent by `exposure_key`. Charges are "0": history is not billed."""
    events = [e for x in exposures for e in _exposure_events(x, source)]
    if not events:
        return ExposureImportResult(stored=0, duplicates=0)
    with transaction.atomic():
        result = append_events(events)
    return ExposureImportResult(stored=result.count, duplicates=len(events) - result.count)
