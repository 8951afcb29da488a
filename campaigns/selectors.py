"""Reads of the campaigns app: the delivery contract (CONTRACTS.md), the as-of view of a
campaign folded from its events, history, and reports. Other apps use only the frozen
dataclasses returned here."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from adplatform.eventlog import selectors as eventlog

from . import events as ev
from .models import Advertiser, Campaign, CampaignDaySpend, CampaignSpend, Creative, Placement, ReportRow
from .projections import fold
from .validation import TARGETING_KEYS, hhmm_to_time

# --- delivery contract -------------------------------------------------------------------


@dataclass(frozen=True)
class Daypart:
    days: tuple[int, ...]  # 0=Mon..6=Sun, campaign-local time
    start: time
    end: time  # time.max for "24:00"


@dataclass(frozen=True)
class FrequencyCap:
    scope: str  # "campaign" | "creative"
    max: int
    window_seconds: int


@dataclass(frozen=True)
class Targeting:
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    segments: tuple[str, ...]
    placements: tuple[str, ...]
    page_types: tuple[str, ...]
    devices: tuple[str, ...]
    geo: tuple[str, ...]  # () = any


@dataclass(frozen=True)
class CreativeVariant:
    headline: str
    body: str | None


@dataclass(frozen=True)
class DeliveryCreative:
    creative_id: int
    campaign_id: int
    advertiser_id: int
    headline: str
    body: str
    image_url: str
    landing_url: str
    product_id: str | None
    variants: tuple[CreativeVariant, ...]


@dataclass(frozen=True)
class DeliveryCampaign:
    campaign_id: int
    advertiser_id: int
    objective: str
    bid_model: str
    bid: Decimal
    currency: str
    daily_budget: Decimal | None
    total_budget: Decimal | None
    spent_today: Decimal
    spent_total: Decimal
    start: datetime
    end: datetime | None
    timezone: str
    dayparts: tuple[Daypart, ...]
    pacing: str
    frequency_caps: tuple[FrequencyCap, ...]
    targeting: Targeting
    creatives: tuple[DeliveryCreative, ...]  # approved creatives only


@dataclass(frozen=True)
class PlacementInfo:
    key: str
    page_types: tuple[str, ...]
    slots: int
    floor_cpm: Decimal


def to_dayparts(raw: Iterable[dict[str, Any]]) -> tuple[Daypart, ...]:
    return tuple(
        Daypart(days=tuple(p["days"]), start=hhmm_to_time(p["start"]), end=hhmm_to_time(p["end"])) for p in raw
    )


def to_caps(raw: Iterable[dict[str, Any]]) -> tuple[FrequencyCap, ...]:
    return tuple(FrequencyCap(scope=c["scope"], max=c["max"], window_seconds=c["window_seconds"]) for c in raw)


def to_targeting(raw: dict[str, Any] | None) -> Targeting:
    raw = raw or {}
    return Targeting(**{k: tuple(raw.get(k) or ()) for k in TARGETING_KEYS})


def _delivery_creative(c: Creative) -> DeliveryCreative:
    return DeliveryCreative(
        creative_id=c.pk,
        campaign_id=c.campaign_id,
        advertiser_id=c.advertiser_id,
        headline=c.headline,
        body=c.body,
        image_url=c.image_url,
        landing_url=c.landing_url,
        product_id=c.product_id,
        variants=tuple(CreativeVariant(headline=v["headline"], body=v.get("body")) for v in c.variants),
    )


def local_day(at: datetime, tz: str) -> date:
    return at.astimezone(zoneinfo.ZoneInfo(tz)).date()


def delivery_campaigns(*, at: datetime) -> list[DeliveryCampaign]:
    """Campaigns with status active and start <= at < end, with their approved creatives and
    spend (today = the campaign-local day of `at`). Dayparting, budgets and caps are
    checked by delivery."""
    campaigns = list(
        Campaign.objects.filter(status=Campaign.Status.ACTIVE, start__lte=at)
        .filter(Q(end__isnull=True) | Q(end__gt=at))
        .order_by("id")
    )
    if not campaigns:
        return []
    ids = [c.pk for c in campaigns]
    creatives: dict[int, list[DeliveryCreative]] = {}
    for cr in Creative.objects.filter(campaign_id__in=ids, status=Creative.Status.APPROVED).order_by("id"):
        creatives.setdefault(cr.campaign_id, []).append(_delivery_creative(cr))
    totals = dict(CampaignSpend.objects.filter(campaign_id__in=ids).values_list("campaign_id", "spent"))
    utc_day = at.date()
    days = {
        (cid, d): spent
        for cid, d, spent in CampaignDaySpend.objects.filter(
            campaign_id__in=ids, day__gte=utc_day - timedelta(days=1), day__lte=utc_day + timedelta(days=1)
        ).values_list("campaign_id", "day", "spent")
    }
    return [
        DeliveryCampaign(
            campaign_id=c.pk,
            advertiser_id=c.advertiser_id,
            objective=c.objective,
            bid_model=c.bid_model,
            bid=c.bid,
            currency=c.currency,
            daily_budget=c.daily_budget,
            total_budget=c.total_budget,
            spent_today=Decimal(days.get((c.pk, local_day(at, c.timezone)), 0)),
            spent_total=Decimal(totals.get(c.pk, 0)),
            start=c.start,
            end=c.end,
            timezone=c.timezone,
            dayparts=to_dayparts(c.dayparts),
            pacing=c.pacing,
            frequency_caps=to_caps(c.frequency_caps),
            targeting=to_targeting(c.targeting),
            creatives=tuple(creatives.get(c.pk, ())),
        )
        for c in campaigns
    ]


def placement_get(*, key: str) -> PlacementInfo | None:
    p = Placement.objects.filter(key=key).first()
    if p is None:
        return None
    return PlacementInfo(key=p.key, page_types=tuple(p.page_types), slots=p.slots, floor_cpm=p.floor_cpm)


def spend_by_campaign(*, timezones: Mapping[int, str], at: datetime) -> dict[int, tuple[Decimal, Decimal]]:
    """{campaign_id: (spent on its campaign-local day of `at`, spent in total)} for the
    campaigns of `timezones` ({id: time zone}, as in DeliveryCampaign), in two queries:
    delivery re-reads spend more often than the campaign structure."""
    tz = dict(timezones)
    ids = list(tz)
    if not ids:
        return {}
    # with many campaigns an IN list of every id costs more (binding, planning) than
    # reading the few spend rows and dropping the others here
    in_ids = (lambda q: q.filter(campaign_id__in=ids)) if len(ids) <= 50 else (lambda q: q)
    totals = dict(in_ids(CampaignSpend.objects.all()).values_list("campaign_id", "spent"))
    utc_day = at.date()
    days = {
        (cid, d): spent
        for cid, d, spent in in_ids(
            CampaignDaySpend.objects.filter(day__gte=utc_day - timedelta(days=1), day__lte=utc_day + timedelta(days=1))
        ).values_list("campaign_id", "day", "spent")
    }
    day_of: dict[str, date] = {}
    out = {}
    zero = Decimal(0)
    for cid in ids:
        zone = tz[cid]
        d = day_of.get(zone)
        if d is None:
            d = day_of[zone] = local_day(at, zone)
        out[cid] = (Decimal(days.get((cid, d), zero)), Decimal(totals.get(cid, zero)))
    return out


def delivery_fingerprint() -> tuple[Any, ...]:
    """Changes whenever a campaign, creative or placement changes (one query): delivery
    reloads its cached campaign structure only when this moves."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT max(updated_at) FROM campaigns_campaign), (SELECT count(*) FROM campaigns_campaign),"
            " (SELECT max(updated_at) FROM campaigns_creative), (SELECT count(*) FROM campaigns_creative),"
            " (SELECT max(updated_at) FROM campaigns_placement)"
        )
        row = cur.fetchone()
    return tuple(row) if row else ()


def placement_list() -> QuerySet[Placement]:
    return Placement.objects.order_by("key")


# --- as-of -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignState:
    campaign_id: int
    advertiser_id: int
    name: str
    objective: str
    bid_model: str
    bid: Decimal
    currency: str
    daily_budget: Decimal | None
    total_budget: Decimal | None
    start: datetime
    end: datetime | None
    timezone: str
    dayparts: tuple[Daypart, ...]
    pacing: str
    frequency_caps: tuple[FrequencyCap, ...]
    targeting: Targeting
    status: str
    version: int  # stream_version of the last event folded in
    updated_at: datetime


def campaign_as_of(*, campaign_id: int, at: datetime) -> CampaignState | None:
    """The campaign as it was at `at`: its stream's events with occurred_at <= at, folded
    by the same code the state projection uses. None if it did not exist yet."""
    state: dict[str, Any] | None = None
    for event in eventlog.stream_events(stream=ev.campaign_stream(campaign_id)):
        if event.occurred_at > at:
            break
        state = fold(state, event)
    if state is None:
        return None
    return CampaignState(
        campaign_id=state["id"],
        advertiser_id=state["advertiser_id"],
        name=state["name"],
        objective=state["objective"],
        bid_model=state["bid_model"],
        bid=state["bid"],
        currency=state["currency"],
        daily_budget=state["daily_budget"],
        total_budget=state["total_budget"],
        start=state["start"],
        end=state["end"],
        timezone=state["timezone"],
        dayparts=to_dayparts(state["dayparts"]),
        pacing=state["pacing"],
        frequency_caps=to_caps(state["frequency_caps"]),
        targeting=to_targeting(state["targeting"]),
        status=state["status"],
        version=state["version"],
        updated_at=state["updated_at"],
    )


# --- advertiser-scoped reads (API and admin) ------------------------------------------------


def advertiser_get(*, advertiser_id: int) -> Advertiser | None:
    return Advertiser.objects.filter(pk=advertiser_id).first()


def campaign_list(*, advertiser_id: int | None) -> QuerySet[Campaign]:
    qs = Campaign.objects.order_by("-id")
    return qs if advertiser_id is None else qs.filter(advertiser_id=advertiser_id)


def campaign_get(*, campaign_id: int, advertiser_id: int | None) -> Campaign | None:
    return campaign_list(advertiser_id=advertiser_id).filter(pk=campaign_id).first()


def effective_status(campaign: Campaign, *, now: datetime) -> str:
    """Stored status, except that a non-draft campaign past its end reads as "ended"."""
    if campaign.status != Campaign.Status.DRAFT and campaign.end is not None and campaign.end <= now:
        return Campaign.Status.ENDED
    return campaign.status


def creative_list(*, advertiser_id: int | None, campaign_id: int | None = None) -> QuerySet[Creative]:
    qs = Creative.objects.order_by("-id")
    if advertiser_id is not None:
        qs = qs.filter(advertiser_id=advertiser_id)
    if campaign_id is not None:
        qs = qs.filter(campaign_id=campaign_id)
    return qs


def creative_get(*, creative_id: int, advertiser_id: int | None) -> Creative | None:
    return creative_list(advertiser_id=advertiser_id).filter(pk=creative_id).first()


def spend_of(*, campaign_id: int, at: datetime, timezone_name: str) -> tuple[Decimal, Decimal]:
    """(spent on the campaign-local day of `at`, spent in total)."""
    day = local_day(at, timezone_name)
    daily = CampaignDaySpend.objects.filter(campaign_id=campaign_id, day=day).values_list("spent", flat=True).first()
    total = CampaignSpend.objects.filter(campaign_id=campaign_id).values_list("spent", flat=True).first()
    return Decimal(daily or 0), Decimal(total or 0)


# --- history -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    event_type: str
    actor: str
    stream: str
    version: int | None
    changes: tuple[tuple[str, Any], ...]  # (field, new value) as stored in the event


def _history(streams: Iterable[str]) -> list[HistoryEntry]:
    entries = []
    for stream in streams:
        for e in eventlog.stream_events(stream=stream):
            skip = {"campaign_id", "creative_id", "advertiser_id"} if e.type != ev.CREATIVE_CREATED.name else set()
            entries.append(
                HistoryEntry(
                    at=e.occurred_at,
                    event_type=e.type,
                    actor=str(e.meta.get("actor", "")),
                    stream=e.stream,
                    version=e.stream_version,
                    changes=tuple((k, v) for k, v in e.data.items() if k not in skip),
                )
            )
    entries.sort(key=lambda h: (h.at, h.stream, h.version or 0), reverse=True)
    return entries


def advertiser_history(*, advertiser_id: int) -> list[HistoryEntry]:
    return _history([ev.advertiser_stream(advertiser_id)])


def campaign_history(*, campaign_id: int) -> list[HistoryEntry]:
    """Every event of the campaign and of its creatives, newest first."""
    creative_ids = Creative.objects.filter(campaign_id=campaign_id).values_list("id", flat=True)
    return _history([ev.campaign_stream(campaign_id), *(ev.creative_stream(cid) for cid in creative_ids)])


# --- reports -----------------------------------------------------------------------------

GROUP_BY = ("day", "campaign", "creative", "segment", "placement")
_GROUP_COLUMN = {
    "day": "day",
    "campaign": "campaign_id",
    "creative": "creative_id",
    "segment": "segment",
    "placement": "placement",
}


@dataclass(frozen=True)
class ReportLine:
    key: Any  # the group value: date, campaign id, creative id, segment (None = none) or placement
    impressions: int
    clicks: int
    conversions: int
    spend: Decimal
    revenue: Decimal

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def cvr(self) -> float | None:
        return self.conversions / self.clicks if self.clicks else None

    @property
    def cpc(self) -> Decimal | None:
        return self.spend / self.clicks if self.clicks else None

    @property
    def cpa(self) -> Decimal | None:
        return self.spend / self.conversions if self.conversions else None

    @property
    def roas(self) -> float | None:
        return float(self.revenue / self.spend) if self.spend else None


def report_lines(
    *,
    advertiser_id: int | None,
    date_from: date,
    date_to: date,
    group_by: str,
    campaign_id: int | None = None,
    fill_days: bool = False,
) -> list[ReportLine]:
    """Totals per group over UTC days [date_from, date_to]; `fill_days` adds zero rows for
    days without traffic (charts)."""
    column = _GROUP_COLUMN[group_by]
    qs = ReportRow.objects.filter(day__gte=date_from, day__lte=date_to)
    if advertiser_id is not None:
        qs = qs.filter(advertiser_id=advertiser_id)
    if campaign_id is not None:
        qs = qs.filter(campaign_id=campaign_id)
    rows = (
        qs.values(column)
        .annotate(
            i=Sum("impressions"),
            c=Sum("clicks"),
            v=Sum("conversions"),
            s=Sum("spend"),
            r=Sum("revenue"),
        )
        .order_by(column)
    )
    lines: dict[Any, ReportLine] = {
        (row[column] if not (group_by == "segment" and row[column] == "") else None): ReportLine(
            key=row[column] if not (group_by == "segment" and row[column] == "") else None,
            impressions=int(row["i"] or 0),
            clicks=int(row["c"] or 0),
            conversions=int(row["v"] or 0),
            spend=Decimal(row["s"] or 0),
            revenue=Decimal(row["r"] or 0),
        )
        for row in rows
    }
    if fill_days and group_by == "day":
        d = date_from
        while d <= date_to:
            lines.setdefault(d, ReportLine(d, 0, 0, 0, Decimal(0), Decimal(0)))
            d += timedelta(days=1)
        return [lines[k] for k in sorted(lines, key=lambda d: d)]
    return list(lines.values())


def report_total(lines: Iterable[ReportLine]) -> ReportLine:
    lines = list(lines)
    return ReportLine(
        key=None,
        impressions=sum(x.impressions for x in lines),
        clicks=sum(x.clicks for x in lines),
        conversions=sum(x.conversions for x in lines),
        spend=sum((x.spend for x in lines), Decimal(0)),
        revenue=sum((x.revenue for x in lines), Decimal(0)),
    )
