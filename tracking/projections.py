"""Projections of the tracking app.

`tracking_frequency`: AdImpressed → per-shopper impression rows (frequency caps). The
impression service writes the same rows inline in the transaction of the event; this
projection rebuilds them from the log (same code, idempotent by event id).

`ad_reports`: a process manager for `ad_impression` / `ad_click` reported through POST
/events: validates the token and records AdImpressed / AdClicked exactly like the beacons
(same deterministic ids: once per token whichever arrives first); rejected reports are
counted by reason in `tracking_report_rejection` and logged.

`attribution`: AdClicked + OrderPlaced → ConversionAttributed for the shopper's last click
within ATTRIBUTION_WINDOW_SECONDS before the order (ADR 0031). An order attributed once
stays attributed to that click; an order that found no click is attributed when a click
from before it arrives late (still within the window). Only clicks this app recorded
count: imported/generated history (`ad_exposures_import`) brings its own conversions.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F

from adplatform.eventlog.projections import Projection, register_projection
from adplatform.eventlog.selectors import StoredEvent
from ranking.events import AD_CLICKED, AD_IMPRESSED

from . import services
from .models import AttributionClick, AttributionOrder, RecentImpression, ReportRejection

logger = logging.getLogger(__name__)

AD_IMPRESSION_REPORTED = "AdImpressionReported"
AD_CLICK_REPORTED = "AdClickReported"
ORDER_PLACED = "OrderPlaced"


@register_projection
class FrequencyProjection(Projection):
    name = "tracking_frequency"
    event_types = frozenset({AD_IMPRESSED.name})

    def apply(self, events: list[StoredEvent]) -> None:
        services.frequency_rows_write(events)

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE tracking_recent_impression")

    def forget_user(self, user_key: str) -> None:
        RecentImpression.objects.filter(user_key=user_key).delete()


@register_projection
class AdReportsProjection(Projection):
    name = "ad_reports"
    event_types = frozenset({AD_IMPRESSION_REPORTED, AD_CLICK_REPORTED})
    durable_commit = True  # appends events and moves money

    def apply(self, events: list[StoredEvent]) -> None:
        rejected: dict[str, int] = {}
        for e in events:
            reason = services.reported_ad_event_record(
                click=e.type == AD_CLICK_REPORTED,
                token=e.data.get("token"),
                user_key=e.user_key,
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
            )
            if reason is not None:
                rejected[reason] = rejected.get(reason, 0) + 1
                logger.info("tracking: reported %s %s rejected: %s", e.type, e.event_id, reason)
        for reason, n in sorted(rejected.items()):
            ReportRejection.objects.get_or_create(reason=reason)
            ReportRejection.objects.filter(reason=reason).update(count=F("count") + n)

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE tracking_report_rejection")

    def forget_user(self, user_key: str) -> None:
        """Erasure: nothing to do, the rejection counters hold no shopper (and the reported
        events lose their token on erasure)."""


def _click_row(e: StoredEvent, user_key: str) -> AttributionClick:
    d = e.data
    return AttributionClick(
        event_id=e.event_id,
        user_key=user_key,
        clicked_at=e.occurred_at,
        request_id=str(d["request_id"]),
        creative_id=int(d["creative_id"]),
        campaign_id=int(d["campaign_id"]),
        advertiser_id=int(d["advertiser_id"]),
        placement=str(d.get("placement") or ""),
        pricing_model=str(d.get("pricing_model") or ""),
        price=str(d.get("price") or "0"),
        currency=str(d.get("currency") or ""),
        segment=d.get("segment"),
    )


def _attributed_click(row: AttributionClick) -> services.AttributedClick:
    return services.AttributedClick(
        event_id=row.event_id,
        request_id=row.request_id,
        creative_id=row.creative_id,
        campaign_id=row.campaign_id,
        advertiser_id=row.advertiser_id,
        placement=row.placement,
        pricing_model=row.pricing_model,
        price=Decimal(row.price),
        segment=row.segment,
    )


@register_projection
class AttributionProjection(Projection):
    name = "attribution"
    event_types = frozenset({AD_CLICKED.name, ORDER_PLACED})
    durable_commit = True  # appends events and moves money (CPA)

    def apply(self, events: list[StoredEvent]) -> None:
        window = timedelta(seconds=settings.ATTRIBUTION_WINDOW_SECONDS)
        for e in events:
            if e.user_key is None:  # erased shopper
                continue
            if e.type == AD_CLICKED.name:
                if e.meta.get("source") in services.TRACKED_SOURCES:  # not imported history
                    self._click(e, e.user_key, window)
            else:
                self._order(e, e.user_key, window)

    def _last_click(self, user_key: str, at: Any, window: timedelta) -> AttributionClick | None:
        # last click at or before the order, within the window; ties broken by event id
        return (
            AttributionClick.objects.filter(user_key=user_key, clicked_at__lte=at, clicked_at__gte=at - window)
            .order_by("-clicked_at", "-event_id")
            .first()
        )

    def _attribute(self, order: AttributionOrder, click: AttributionClick) -> None:
        order.conversion_event_id = services.conversion_attribute(
            user_key=order.user_key,
            order_id=order.order_id,
            ordered_at=order.ordered_at,
            revenue=order.revenue,
            currency=order.currency,
            click=_attributed_click(click),
        )
        order.click_event_id = click.event_id
        order.save(update_fields=["click_event_id", "conversion_event_id"])

    def _click(self, e: StoredEvent, user_key: str, window: timedelta) -> None:
        row = _click_row(e, user_key)
        AttributionClick.objects.bulk_create([row], ignore_conflicts=True)  # event ids are unique in the log
        # late click: orders after it (within the window) that found no click when they came
        waiting = AttributionOrder.objects.filter(
            user_key=row.user_key,
            click_event_id__isnull=True,
            ordered_at__gte=row.clicked_at,
            ordered_at__lte=row.clicked_at + window,
        ).order_by("ordered_at", "id")
        for order in waiting:
            click = self._last_click(order.user_key, order.ordered_at, window)
            if click is not None:
                self._attribute(order, click)

    def _order(self, e: StoredEvent, user_key: str, window: timedelta) -> None:
        d = e.data
        order_id = d.get("order_id")
        if not order_id:
            return
        order, created = AttributionOrder.objects.get_or_create(
            user_key=user_key,
            order_id=str(order_id),
            defaults={
                "ordered_at": e.occurred_at,
                "revenue": Decimal(str(d.get("revenue") or "0")),
                "currency": str(d.get("currency") or ""),
            },
        )
        if not created:
            return  # the same order re-sent under another event id counts once
        click = self._last_click(order.user_key, order.ordered_at, window)
        if click is not None:
            self._attribute(order, click)

    def reset(self) -> None:
        # ConversionAttributed events stay in the log; a replay finds them and appends
        # (and charges) nothing new.
        with connection.cursor() as cur:
            cur.execute("TRUNCATE tracking_attribution_click, tracking_attribution_order RESTART IDENTITY")

    def forget_user(self, user_key: str) -> None:
        AttributionClick.objects.filter(user_key=user_key).delete()
        AttributionOrder.objects.filter(user_key=user_key).delete()
