"""Projections of the campaigns app.

`campaigns` (state): advertisers, campaigns, creatives and placements. The services call
`apply_state_events` inline, in the transaction that appends the events; the registered
projection runs the very same code over the log, so a rebuild from zero gives the same
rows. Events carry full new values and every row remembers the stream_version it was
last set from, so applying an event again (or an older one after a newer one) is a no-op.

`reports`: counters per UTC day × campaign × creative × placement × segment from the ad
delivery events (ranking/events.py); see docs/adr/0011-reports-by-utc-day.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from django.db import connection
from django.utils.dateparse import parse_datetime

from adplatform.eventlog.projections import Projection, register_projection
from adplatform.eventlog.selectors import StoredEvent
from ranking.events import AD_CLICKED, AD_IMPRESSED, CONVERSION_ATTRIBUTED

from . import events as ev
from .models import Advertiser, Campaign, Creative, Placement


class EventLike(Protocol):
    """What apply/fold read: both NewEvent (inline) and StoredEvent (replay) fit."""

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> dict[str, Any]: ...

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def stream_version(self) -> int | None: ...


_CAMPAIGN_ALL = (
    "advertiser_id",
    "name",
    "objective",
    "bid_model",
    "bid",
    "currency",
    "daily_budget",
    "total_budget",
    "start",
    "end",
    "timezone",
    "dayparts",
    "pacing",
    "frequency_caps",
    "targeting",
    "status",
)
_CREATIVE_CONTENT = (
    "headline",
    "body",
    "image_url",
    "landing_url",
    "product_id",
    "variants",
    "status",
    "review_reason",
)
_REVIEW = ("status", "review_reason")

# event type → (model, id key in data, fields the event sets, creates the row?)
_SETS: dict[str, tuple[type[Any], str, tuple[str, ...], bool]] = {
    ev.ADVERTISER_CREATED.name: (Advertiser, "advertiser_id", ("name", "currency", "timezone"), True),
    ev.ADVERTISER_CHANGED.name: (Advertiser, "advertiser_id", ("name", "timezone"), False),
    ev.CAMPAIGN_CREATED.name: (Campaign, "campaign_id", _CAMPAIGN_ALL, True),
    ev.CAMPAIGN_RENAMED.name: (Campaign, "campaign_id", ("name",), False),
    ev.CAMPAIGN_BUDGET_CHANGED.name: (Campaign, "campaign_id", ("daily_budget", "total_budget"), False),
    ev.CAMPAIGN_BID_CHANGED.name: (Campaign, "campaign_id", ("bid_model", "bid"), False),
    ev.CAMPAIGN_TARGETING_CHANGED.name: (Campaign, "campaign_id", ("targeting",), False),
    ev.CAMPAIGN_SCHEDULE_CHANGED.name: (Campaign, "campaign_id", ("start", "end", "timezone", "dayparts"), False),
    ev.CAMPAIGN_DELIVERY_CHANGED.name: (Campaign, "campaign_id", ("objective", "pacing", "frequency_caps"), False),
    ev.CAMPAIGN_ACTIVATED.name: (Campaign, "campaign_id", ("status",), False),
    ev.CAMPAIGN_PAUSED.name: (Campaign, "campaign_id", ("status",), False),
    ev.CAMPAIGN_RESUMED.name: (Campaign, "campaign_id", ("status",), False),
    ev.CREATIVE_CREATED.name: (Creative, "creative_id", ("campaign_id", "advertiser_id", *_CREATIVE_CONTENT), True),
    ev.CREATIVE_CHANGED.name: (Creative, "creative_id", _CREATIVE_CONTENT, False),
    ev.CREATIVE_APPROVED.name: (Creative, "creative_id", _REVIEW, False),
    ev.CREATIVE_REJECTED.name: (Creative, "creative_id", _REVIEW, False),
    ev.CREATIVE_PAUSED.name: (Creative, "creative_id", _REVIEW, False),
    ev.CREATIVE_RESUMED.name: (Creative, "creative_id", _REVIEW, False),
    ev.PLACEMENT_CREATED.name: (Placement, "placement_id", ("key", "page_types", "slots", "floor_cpm"), True),
    ev.PLACEMENT_CHANGED.name: (Placement, "placement_id", ("page_types", "slots", "floor_cpm"), False),
}
_DECIMALS = frozenset({"bid", "daily_budget", "total_budget", "floor_cpm"})
_DATETIMES = frozenset({"start", "end"})


def fields_set_by(event_type: str) -> tuple[str, ...]:
    return _SETS[event_type][2]


def typed_value(field: str, value: Any) -> Any:
    """An event's JSON value → the Python value of the read model."""
    if value is None:
        return None
    if field in _DECIMALS:
        return Decimal(value)
    if field in _DATETIMES:
        return parse_datetime(value)
    return value


def fold(state: dict[str, Any] | None, event: EventLike) -> dict[str, Any]:
    """Pure: the aggregate's typed state after `event` (used by the as-of selector)."""
    model, id_key, fields, creates = _SETS[event.type]
    new = dict(state or {})
    if creates or state is None:
        new.setdefault("id", event.data[id_key])
        new.setdefault("created_at", event.occurred_at)
    for f in fields:
        new[f] = typed_value(f, event.data.get(f))
    new["version"] = event.stream_version or 0
    new["updated_at"] = event.occurred_at
    return new


def apply_state_events(events: Iterable[EventLike]) -> None:
    """Set the read-model rows from events (inline by services, and by the projection).
    Rows created by a run of events go in one INSERT (bulk creation, replay); a change to
    a row created in the same run is folded into it before the INSERT."""
    pending: dict[tuple[Any, Any], tuple[Any, dict[str, Any]]] = {}  # (model, pk) → (row, folded changes)

    def flush() -> None:
        by_model: dict[Any, list[tuple[Any, dict[str, Any]]]] = {}
        for (model, _pk), entry in pending.items():
            by_model.setdefault(model, []).append(entry)
        for model, entries in by_model.items():
            model.objects.bulk_create([row for row, _ in entries], ignore_conflicts=True)
            folded = {row.pk: (row.version, changes) for row, changes in entries if changes}
            if folded:
                # a row that existed already ignored the INSERT: apply the folded changes to it
                for pk, have in model.objects.filter(pk__in=list(folded)).values_list("pk", "version"):
                    version, changes = folded[pk]
                    if have < version:
                        model.objects.filter(pk=pk, version__lt=version).update(**changes)
        pending.clear()

    for event in events:
        spec = _SETS.get(event.type)
        if spec is None:
            continue
        model, id_key, fields, creates = spec
        pk = event.data[id_key]
        version = event.stream_version or 0
        values = {f: typed_value(f, event.data.get(f)) for f in fields}
        values["updated_at"] = event.occurred_at
        values["version"] = version
        entry = pending.get((model, pk))
        if creates:
            if entry is None:
                pending[(model, pk)] = (model(id=pk, created_at=event.occurred_at, **values), {})
        elif entry is not None:
            row, changes = entry
            if row.version < version:
                for name, value in values.items():
                    setattr(row, name, value)
                changes.update(values)
        else:
            flush()
            model.objects.filter(pk=pk, version__lt=version).update(**values)
    flush()


@register_projection
class CampaignStateProjection(Projection):
    name = "campaigns"
    event_types = ev.STATE_EVENT_TYPES

    def apply(self, events: list[StoredEvent]) -> None:
        apply_state_events(events)

    def reset(self) -> None:
        # No RESTART IDENTITY: ids come from the events, the sequences must stay ahead of them.
        with connection.cursor() as cur:
            cur.execute("TRUNCATE campaigns_advertiser, campaigns_campaign, campaigns_creative, campaigns_placement")


_REPORT_COUNTER = {
    AD_IMPRESSED.name: "impressions",
    AD_CLICKED.name: "clicks",
    CONVERSION_ATTRIBUTED.name: "conversions",
}
REPORT_EVENT_TYPES = frozenset(_REPORT_COUNTER)


def _report_cells(events: Iterable[StoredEvent]) -> dict[tuple[Any, ...], dict[str, Any]]:
    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in events:
        counter = _REPORT_COUNTER.get(e.type)
        if counter is None:
            continue
        d: Mapping[str, Any] = e.data
        day = e.occurred_at.astimezone(UTC).date()
        key = (day, int(d["campaign_id"]), int(d["creative_id"]), str(d.get("placement") or ""), d.get("segment") or "")
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = {
                "advertiser_id": int(d["advertiser_id"]),
                "impressions": 0,
                "clicks": 0,
                "conversions": 0,
                "spend": Decimal(0),
                "revenue": Decimal(0),
            }
        cell[counter] += 1
        cell["spend"] += Decimal(str(d.get("charge") or "0"))
        if counter == "conversions":
            cell["revenue"] += Decimal(str(d.get("revenue") or "0"))
    return cells


@register_projection
class ReportsProjection(Projection):
    name = "reports"
    event_types = REPORT_EVENT_TYPES

    def apply(self, events: list[StoredEvent]) -> None:
        cells = _report_cells(events)
        if not cells:
            return
        keys = sorted(cells)  # fixed lock order: no deadlocks between runners
        columns = list(zip(*keys, strict=True))
        with connection.cursor() as cur:
            cur.execute(
                """
                INSERT INTO campaigns_report_row AS t
                    (day, campaign_id, creative_id, placement, segment, advertiser_id,
                     impressions, clicks, conversions, spend, revenue)
                SELECT * FROM unnest(%s::date[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::bigint[],
                                     %s::bigint[], %s::bigint[], %s::bigint[], %s::numeric[], %s::numeric[])
                ON CONFLICT (day, campaign_id, creative_id, placement, segment) DO UPDATE SET
                    impressions = t.impressions + EXCLUDED.impressions,
                    clicks = t.clicks + EXCLUDED.clicks,
                    conversions = t.conversions + EXCLUDED.conversions,
                    spend = t.spend + EXCLUDED.spend,
                    revenue = t.revenue + EXCLUDED.revenue
                """,
                [
                    *[list(c) for c in columns],
                    *[[cells[k][f] for k in keys] for f in ("advertiser_id", "impressions", "clicks", "conversions")],
                    [cells[k]["spend"] for k in keys],
                    [cells[k]["revenue"] for k in keys],
                ],
            )

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE campaigns_report_row")

    def forget_user(self, user_key: str) -> None:
        """Erasure: nothing to do, report cells are aggregates with no shopper in them (and
        erasure keeps the campaign, creative, charge and revenue fields of ad events)."""
