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
from collections import defaultdict
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
    """Decides a batch in memory, in log order, from the rows its shoppers already have
    (clicks and waiting orders within one window of the batch), then writes rows and
    appends the conversions in bulk: the decisions are those of applying the events one by
    one, whatever the batch boundaries (replay == live)."""

    name = "attribution"
    event_types = frozenset({AD_CLICKED.name, ORDER_PLACED})
    durable_commit = True  # appends events and moves money (CPA)

    def apply(self, events: list[StoredEvent]) -> None:
        window = timedelta(seconds=settings.ATTRIBUTION_WINDOW_SECONDS)
        relevant = [
            e
            for e in events
            if e.user_key is not None  # erased shoppers
            and (
                (e.type == AD_CLICKED.name and e.meta.get("source") in services.TRACKED_SOURCES)
                or (e.type == ORDER_PLACED and e.data.get("order_id"))
            )
        ]
        if not relevant:
            return
        users = {str(e.user_key) for e in relevant}
        lo = min(e.occurred_at for e in relevant) - window
        hi = max(e.occurred_at for e in relevant) + window
        clicks: dict[str, list[AttributionClick]] = defaultdict(list)
        for c in AttributionClick.objects.filter(user_key__in=users, clicked_at__gte=lo, clicked_at__lte=hi):
            clicks[c.user_key].append(c)
        # waiting orders, each with its sort key (ordered_at, existing before new, id / arrival)
        waiting: dict[str, list[tuple[tuple[Any, int, int], AttributionOrder]]] = defaultdict(list)
        for o in AttributionOrder.objects.filter(
            user_key__in=users, click_event_id__isnull=True, ordered_at__gte=lo, ordered_at__lte=hi
        ):
            waiting[o.user_key].append(((o.ordered_at, 0, o.id), o))
        order_ids = {str(e.data["order_id"]) for e in relevant if e.type == ORDER_PLACED}
        known = set(
            AttributionOrder.objects.filter(user_key__in=users, order_id__in=order_ids).values_list(
                "user_key", "order_id"
            )
        )

        def last_click(user: str, at: Any) -> AttributionClick | None:
            # the latest click at or before `at` within the window; ties: the larger event id
            best = None
            for c in clicks[user]:
                if at - window <= c.clicked_at <= at and (
                    best is None or (c.clicked_at, c.event_id) > (best.clicked_at, best.event_id)
                ):
                    best = c
            return best

        new_clicks: list[AttributionClick] = []
        new_orders: list[AttributionOrder] = []
        attributed: list[tuple[AttributionOrder, AttributionClick]] = []
        for e in relevant:
            user = str(e.user_key)
            if e.type == AD_CLICKED.name:
                row = _click_row(e, user)
                clicks[user].append(row)
                new_clicks.append(row)
                # a late click: orders after it (within the window) that found no click
                due = sorted(
                    (t for t in waiting[user] if row.clicked_at <= t[1].ordered_at <= row.clicked_at + window),
                    key=lambda t: t[0],
                )
                for _key, order in due:
                    click = last_click(user, order.ordered_at)
                    if click is not None:
                        order.click_event_id = click.event_id
                        attributed.append((order, click))
                        waiting[user] = [t for t in waiting[user] if t[1] is not order]
                continue
            d = e.data
            key = (user, str(d["order_id"]))
            if key in known:
                continue  # the same order re-sent under another event id counts once
            known.add(key)
            order = AttributionOrder(
                user_key=user,
                order_id=key[1],
                ordered_at=e.occurred_at,
                revenue=str(d.get("revenue") or "0"),
                currency=str(d.get("currency") or ""),
            )
            new_orders.append(order)
            click = last_click(user, order.ordered_at)
            if click is not None:
                order.click_event_id = click.event_id
                attributed.append((order, click))
            else:
                waiting[user].append(((order.ordered_at, 1, len(new_orders)), order))

        conversion_ids = services.conversions_attribute(
            conversions=[
                services.Conversion(
                    user_key=o.user_key,
                    order_id=o.order_id,
                    ordered_at=o.ordered_at,
                    revenue=Decimal(o.revenue),
                    currency=o.currency,
                    click=_attributed_click(c),
                )
                for o, c in attributed
            ]
        )
        for (order, _click), conversion_id in zip(attributed, conversion_ids, strict=True):
            order.conversion_event_id = conversion_id
        AttributionClick.objects.bulk_create(new_clicks, ignore_conflicts=True)  # event ids are unique in the log
        AttributionOrder.objects.bulk_create(new_orders)  # in log order: ids keep arrival order
        existing = [o for o, _c in attributed if o.pk is not None]
        if existing:
            AttributionOrder.objects.bulk_update(existing, ["click_event_id", "conversion_event_id"])

    def reset(self) -> None:
        # ConversionAttributed events stay in the log; a replay finds them and appends
        # (and charges) nothing new.
        with connection.cursor() as cur:
            cur.execute("TRUNCATE tracking_attribution_click, tracking_attribution_order RESTART IDENTITY")

    def forget_user(self, user_key: str) -> None:
        AttributionClick.objects.filter(user_key=user_key).delete()
        AttributionOrder.objects.filter(user_key=user_key).delete()
