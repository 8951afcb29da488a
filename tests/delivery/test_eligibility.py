"""Every eligibility rule as a pure function: schedule, dayparts in the campaign's time
zone, budgets, each targeting list (omitted = any), frequency caps by scope and window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from campaigns.selectors import Daypart, DeliveryCampaign, FrequencyCap, Targeting
from delivery import eligibility as rules
from delivery.eligibility import ImpressionCounts, RankContext

AT = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # Wednesday; 13:00 in Berlin (CET)
NO_TARGETING = Targeting((), (), (), (), (), (), ())


def campaign(**kw: Any) -> DeliveryCampaign:
    base = DeliveryCampaign(
        campaign_id=1, advertiser_id=1, objective="clicks", bid_model="cpc", bid=Decimal("0.50"), currency="EUR",
        daily_budget=Decimal("10"), total_budget=Decimal("100"), spent_today=Decimal(0), spent_total=Decimal(0),
        start=AT - timedelta(days=1), end=AT + timedelta(days=1), timezone="Europe/Berlin", dayparts=(),
        pacing="asap", frequency_caps=(), targeting=NO_TARGETING, creatives=(),
    )  # fmt: skip
    return replace(base, **kw)


def targeting(**kw: tuple[str, ...]) -> Targeting:
    return replace(NO_TARGETING, **kw)


CTX = RankContext(placement="home_top", page_type="category", device="mobile", geo="DE-BY",
                  query="trail running shoes", context_categories=frozenset({"shoes", "running"}))  # fmt: skip


def reason(
    c: DeliveryCampaign, ctx: RankContext = CTX, at: datetime = AT, today: str = "0", total: str = "0"
) -> str | None:
    return rules.campaign_reason(c, ctx, at=at, spent_today=Decimal(today), spent_total=Decimal(total))


def test_a_campaign_without_restrictions_is_eligible() -> None:
    assert reason(campaign()) is None


def test_schedule_start_inclusive_end_exclusive() -> None:
    assert reason(campaign(start=AT)) is None
    assert reason(campaign(start=AT + timedelta(seconds=1))) == rules.REASON_SCHEDULE
    assert reason(campaign(end=AT)) == rules.REASON_SCHEDULE
    assert reason(campaign(end=None)) is None


def test_dayparts_are_read_in_the_campaigns_time_zone() -> None:
    # Wednesday (2) 08:00-13:00 Berlin: 12:00 UTC is 13:00 Berlin, the window's end (exclusive)
    morning = (Daypart(days=(2,), start=time(8), end=time(13)),)
    assert reason(campaign(dayparts=morning)) == rules.REASON_DAYPART
    assert reason(campaign(dayparts=morning), at=AT - timedelta(minutes=1)) is None
    # the same window in UTC contains 12:00
    assert reason(campaign(dayparts=morning, timezone="UTC")) is None
    # other weekdays do not count; "24:00" (time.max) includes the day's last minute
    assert reason(campaign(dayparts=(Daypart(days=(0, 1), start=time(0), end=time.max),))) == rules.REASON_DAYPART
    late = (Daypart(days=(2,), start=time(23), end=time.max),)
    assert reason(campaign(dayparts=late, timezone="UTC"), at=AT.replace(hour=23, minute=59, second=30)) is None


def test_budgets_daily_and_total() -> None:
    assert reason(campaign(), today="9.99") is None
    assert reason(campaign(), today="10.00") == rules.REASON_DAILY_BUDGET
    assert reason(campaign(), total="100.00") == rules.REASON_TOTAL_BUDGET
    assert reason(campaign(daily_budget=None, total_budget=None), today="1e6", total="1e6") is None


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"placements": ("home_top",)}, None),
        ({"placements": ("cart_below",)}, rules.REASON_PLACEMENT),
        ({"page_types": ("category", "search")}, None),
        ({"page_types": ("home",)}, rules.REASON_PAGE_TYPE),
        ({"devices": ("mobile",)}, None),
        ({"devices": ("desktop",)}, rules.REASON_DEVICE),
        ({"geo": ("DE",)}, None),  # a country matches its regions
        ({"geo": ("DE-BY",)}, None),
        ({"geo": ("DE-BE",)}, rules.REASON_GEO),
        ({"geo": ("D",)}, rules.REASON_GEO),
        ({"categories": ("running",)}, None),
        ({"categories": ("tents",)}, rules.REASON_CATEGORY),
        ({"keywords": ("running shoes",)}, None),  # phrases match as whole words
        ({"keywords": ("run",)}, rules.REASON_KEYWORD),
        ({"keywords": ("boots", "TRAIL")}, None),
        ({"segments": ("s-1",)}, rules.REASON_SEGMENT),  # the shopper has no segment
    ],
)
def test_targeting_lists(kw: dict[str, tuple[str, ...]], expected: str | None) -> None:
    assert reason(campaign(targeting=targeting(**kw))) == expected


def test_missing_context_does_not_match_a_restricted_list() -> None:
    bare = RankContext(placement="home_top", page_type="home")
    for kw, expected in [
        ({"devices": ("mobile",)}, rules.REASON_DEVICE),
        ({"geo": ("DE",)}, rules.REASON_GEO),
        ({"keywords": ("shoes",)}, rules.REASON_KEYWORD),
        ({"categories": ("shoes",)}, rules.REASON_CATEGORY),
    ]:
        assert reason(campaign(targeting=targeting(**kw)), ctx=bare) == expected


def test_categories_also_match_the_shoppers_interests_and_segments_need_consent() -> None:
    interested = RankContext(placement="p", page_type="home", interest_categories=frozenset({"tents"}), segment="s-1")
    assert reason(campaign(targeting=targeting(categories=("tents",))), ctx=interested) is None
    assert reason(campaign(targeting=targeting(segments=("s-1", "s-2"))), ctx=interested) is None
    opted_out = replace(interested, personal=False)
    assert reason(campaign(targeting=targeting(segments=("s-1",))), ctx=opted_out) == rules.REASON_SEGMENT


def test_frequency_caps_count_impressions_inside_the_window_by_scope() -> None:
    caps = (FrequencyCap("campaign", 2, 3600), FrequencyCap("creative", 1, 600))
    seen = ImpressionCounts.of([(1, 10, AT - timedelta(seconds=3600)), (1, 11, AT - timedelta(seconds=3601))])
    # campaign: 1 impression inside the hour (the window start is inclusive) < 2
    assert rules.cap_reason(caps, campaign_id=1, creative_id=None, seen=seen, at=AT) is None
    both = ImpressionCounts.of([(1, 10, AT - timedelta(seconds=3600)), (1, 11, AT - timedelta(seconds=3599))])
    assert rules.cap_reason(caps, campaign_id=1, creative_id=None, seen=both, at=AT) == rules.REASON_CAP_CAMPAIGN
    # creative 10: its impressions are older than 10 minutes
    assert rules.cap_reason(caps, campaign_id=1, creative_id=10, seen=seen, at=AT) is None
    seen2 = ImpressionCounts.of([(1, 10, AT - timedelta(seconds=60)), (1, 11, AT - timedelta(seconds=120))])
    assert rules.cap_reason(caps, campaign_id=1, creative_id=None, seen=seen2, at=AT) == rules.REASON_CAP_CAMPAIGN
    assert rules.cap_reason(caps, campaign_id=1, creative_id=10, seen=seen2, at=AT) == rules.REASON_CAP_CREATIVE
    assert rules.cap_reason(caps, campaign_id=2, creative_id=12, seen=seen2, at=AT) is None
