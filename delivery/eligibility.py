"""Eligibility rules of /rank as pure functions over the serving snapshot: schedule and
dayparting in the campaign's time zone, remaining budgets, targeting, frequency caps.
Each rule answers None (eligible) or the reason code logged in the decision."""

from __future__ import annotations

import re
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

from campaigns.selectors import Daypart, DeliveryCampaign, FrequencyCap

# reason codes (logged per candidate in AdDecisionMade, asserted by the tests)
REASON_SCHEDULE = "schedule"
REASON_DAYPART = "daypart"
REASON_DAILY_BUDGET = "daily_budget"
REASON_TOTAL_BUDGET = "total_budget"
REASON_PLACEMENT = "targeting.placements"
REASON_PAGE_TYPE = "targeting.page_types"
REASON_DEVICE = "targeting.devices"
REASON_GEO = "targeting.geo"
REASON_CATEGORY = "targeting.categories"
REASON_KEYWORD = "targeting.keywords"
REASON_SEGMENT = "targeting.segments"
REASON_CAP_CAMPAIGN = "frequency_cap.campaign"
REASON_CAP_CREATIVE = "frequency_cap.creative"
REASON_FLOOR = "below_floor"
REASON_PACED = "paced"
REASON_NOT_SERVABLE = "not_servable"  # unknown, not approved, or its campaign is not running
REASON_ADVERTISER_DUP = "advertiser_already_shown"
REASON_OUTBID = "outbid"

_WORD = re.compile(r"[^\w]+", re.UNICODE)


@dataclass(frozen=True)
class RankContext:
    """What the rules look at, built once per request. `personal` is False for shoppers
    who opted out: no interests, no segment (segment-targeted campaigns do not match)."""

    placement: str
    page_type: str
    device: str | None = None
    geo: str | None = None
    query: str | None = None
    context_categories: frozenset[str] = frozenset()  # the page's category, or the viewed product's path
    interest_categories: frozenset[str] = frozenset()  # the shopper's top interests (consenting only)
    segment: str | None = None
    personal: bool = True


@dataclass(frozen=True)
class ImpressionCounts:
    """The shopper's recent impressions, for frequency caps: impression times per
    campaign and per creative (only used for consenting shoppers)."""

    by_campaign: Mapping[int, Sequence[datetime]] = field(default_factory=dict)
    by_creative: Mapping[int, Sequence[datetime]] = field(default_factory=dict)

    @staticmethod
    def of(impressions: Iterable[tuple[int, int, datetime]]) -> ImpressionCounts:
        """From (campaign_id, creative_id, at) rows."""
        camp: dict[int, list[datetime]] = defaultdict(list)
        crea: dict[int, list[datetime]] = defaultdict(list)
        for campaign_id, creative_id, at in impressions:
            camp[campaign_id].append(at)
            crea[creative_id].append(at)
        return ImpressionCounts(by_campaign=dict(camp), by_creative=dict(crea))


@lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_time(at: datetime, tz: str) -> datetime:
    return at.astimezone(_zone(tz))


def in_daypart(dayparts: Sequence[Daypart], tz: str, at: datetime) -> bool:
    """No dayparts = always. A window is [start, end) in campaign-local time; "24:00" is
    stored as time.max and includes the day's last minute."""
    if not dayparts:
        return True
    local = local_time(at, tz)
    weekday, t = local.weekday(), local.time().replace(tzinfo=None)
    return any(weekday in p.days and p.start <= t and (t < p.end or p.end == time.max) for p in dayparts)


def normalise_words(text: str) -> str:
    return " " + " ".join(_WORD.sub(" ", text.lower()).split()) + " "


def keyword_match(keywords: Sequence[str], query: str | None) -> bool:
    """A keyword (or phrase) matches when it appears in the query as whole words."""
    if not query:
        return False
    q = normalise_words(query)
    return any(normalise_words(k) in q for k in keywords if k.strip())


def geo_match(targets: Sequence[str], geo: str | None) -> bool:
    """ "DE" matches "DE" and "DE-BY"; "DE-BY" matches only "DE-BY"."""
    if not geo:
        return False
    g = geo.upper()
    return any(g == t.upper() or g.startswith(t.upper() + "-") for t in targets)


def campaign_reason(
    c: DeliveryCampaign, ctx: RankContext, *, at: datetime, spent_today: Decimal, spent_total: Decimal
) -> str | None:
    """Campaign-level rules, cheapest first. An omitted (empty) targeting list means any."""
    return static_reason(
        c, placement=ctx.placement, page_type=ctx.page_type, device=ctx.device, geo=ctx.geo, at=at,
        spent_today=spent_today, spent_total=spent_total,
    ) or context_reason(c, ctx)  # fmt: skip


def static_reason(
    c: DeliveryCampaign,
    *,
    placement: str,
    page_type: str,
    device: str | None,
    geo: str | None,
    at: datetime,
    spent_today: Decimal,
    spent_total: Decimal,
) -> str | None:
    """The rules that depend on the time, spend and the request's placement, page type,
    device and geo only (the same for many requests: cached, see services._static_plan)."""
    return time_reason(c, at=at, spent_today=spent_today, spent_total=spent_total) or placement_reason(
        c, placement=placement, page_type=page_type, device=device, geo=geo
    )


def time_reason(c: DeliveryCampaign, *, at: datetime, spent_today: Decimal, spent_total: Decimal) -> str | None:
    """Schedule, daypart and budgets: the same for every request at `at`."""
    if at < c.start or (c.end is not None and at >= c.end):
        return REASON_SCHEDULE
    if not in_daypart(c.dayparts, c.timezone, at):
        return REASON_DAYPART
    if c.daily_budget is not None and spent_today >= c.daily_budget:
        return REASON_DAILY_BUDGET
    if c.total_budget is not None and spent_total >= c.total_budget:
        return REASON_TOTAL_BUDGET
    return None


def placement_reason(
    c: DeliveryCampaign, *, placement: str, page_type: str, device: str | None, geo: str | None
) -> str | None:
    """Placement, page type, device and geo targeting: fixed per campaign version."""
    t = c.targeting
    if t.placements and placement not in t.placements:
        return REASON_PLACEMENT
    if t.page_types and page_type not in t.page_types:
        return REASON_PAGE_TYPE
    if t.devices and device not in t.devices:
        return REASON_DEVICE
    if t.geo and not geo_match(t.geo, geo):
        return REASON_GEO
    return None


def needs_context(c: DeliveryCampaign) -> bool:
    t = c.targeting
    return bool(t.categories or t.keywords or t.segments)


def context_reason(c: DeliveryCampaign, ctx: RankContext) -> str | None:
    """Categories (page context or the shopper's interests), keywords, segments."""
    t = c.targeting
    if t.categories and not (
        ctx.context_categories.intersection(t.categories) or ctx.interest_categories.intersection(t.categories)
    ):
        return REASON_CATEGORY
    if t.keywords and not keyword_match(t.keywords, ctx.query):
        return REASON_KEYWORD
    if t.segments and not (ctx.personal and ctx.segment is not None and ctx.segment in t.segments):
        return REASON_SEGMENT
    return None


def _count_since(times: Sequence[datetime], since: datetime) -> int:
    return sum(1 for x in times if x >= since)


def cap_reason(
    caps: Sequence[FrequencyCap], *, campaign_id: int, creative_id: int | None, seen: ImpressionCounts, at: datetime
) -> str | None:
    """Campaign-scope caps (creative_id None) or creative-scope caps of one creative."""
    for cap in caps:
        since = at - timedelta(seconds=cap.window_seconds)
        if cap.scope == "campaign" and creative_id is None:
            if _count_since(seen.by_campaign.get(campaign_id, ()), since) >= cap.max:
                return REASON_CAP_CAMPAIGN
        elif cap.scope == "creative" and creative_id is not None:
            if _count_since(seen.by_creative.get(creative_id, ()), since) >= cap.max:
                return REASON_CAP_CREATIVE
    return None
