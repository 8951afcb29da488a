"""Reports projection: exact totals from a known ad event stream, rebuild == live, and
the /reports API with derived metrics (null when the denominator is 0)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import transaction

from adplatform.access.services import api_key_create
from adplatform.eventlog import projections
from adplatform.eventlog.services import NewEvent, append_events
from campaigns import selectors
from campaigns.models import ReportRow

from ..conftest import auth
from .conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)

DAY1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
DAY2 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def ad_event(
    type_: str,
    *,
    at: datetime,
    campaign: int,
    creative: int,
    advertiser: int,
    placement: str = "home-top",
    segment: str | None = "runners",
    charge: str = "0",
    revenue: str | None = None,
) -> NewEvent:
    request_id = str(uuid.uuid4())
    data: dict[str, Any] = {
        "request_id": request_id,
        "creative_id": creative,
        "campaign_id": campaign,
        "advertiser_id": advertiser,
        "placement": placement,
        "charge": charge,
        "currency": "EUR",
        "segment": segment,
    }
    if type_ == "ConversionAttributed":
        data.update(order_id=str(uuid.uuid4()), revenue=revenue or "0", click_event_id=str(uuid.uuid4()))
    else:
        data.update(position=1, pricing_model="cpc")
    return NewEvent(type=type_, stream=f"decision:{request_id}", data=data, occurred_at=at, user_key="u-1")


def append(events: list[NewEvent]) -> None:
    with transaction.atomic():
        append_events(events)


@pytest.fixture
def setup(make_advertiser: Callable, make_campaign: Callable, make_creative: Callable) -> dict[str, int]:
    a = make_advertiser(name="A")
    b = make_advertiser(name="B")
    ca = make_campaign(a)
    cb = make_campaign(b)
    return {"a": a, "b": b, "ca": ca, "cb": cb, "cra": make_creative(a, ca), "crb": make_creative(b, cb)}


def _rows() -> list[dict[str, Any]]:
    fields = [f.name for f in ReportRow._meta.fields if f.name != "id"]
    return list(ReportRow.objects.order_by("day", "campaign_id", "creative_id", "placement", "segment").values(*fields))


def known_stream(s: dict[str, int]) -> list[NewEvent]:
    A = {"campaign": s["ca"], "creative": s["cra"], "advertiser": s["a"]}  # noqa: N806
    B = {"campaign": s["cb"], "creative": s["crb"], "advertiser": s["b"]}  # noqa: N806
    ev: list[NewEvent] = []
    # day 1, A: 10 impressions, 2 clicks at 0.40, 1 conversion worth 25.00
    ev += [ad_event("AdImpressed", at=DAY1, **A) for _ in range(10)]
    ev += [ad_event("AdClicked", at=DAY1, charge="0.40", **A) for _ in range(2)]
    ev += [ad_event("ConversionAttributed", at=DAY1, revenue="25.00", **A)]
    # day 1 at 23:59:59 UTC still day 1; 4 impressions without segment on another placement
    ev += [
        ad_event("AdImpressed", at=DAY1.replace(hour=23, minute=59, second=59), placement="pdp", segment=None, **A)
        for _ in range(4)
    ]
    # day 2, A: 5 impressions, no clicks
    ev += [ad_event("AdImpressed", at=DAY2, **A) for _ in range(5)]
    # B: CPM charges on impressions, a CPA conversion
    ev += [ad_event("AdImpressed", at=DAY1, charge="0.002", **B) for _ in range(3)]
    ev += [ad_event("ConversionAttributed", at=DAY2, revenue="10.00", charge="1.50", **B)]
    return ev


def test_reports_exact_totals_and_rebuild(setup: dict[str, int]) -> None:
    # given a known stream appended in several transactions, projection run in between
    stream = known_stream(setup)
    projection = projections.get_projection("reports")
    append(stream[:7])
    projections.catch_up(projection)
    append(stream[7:])
    settle("reports")
    # then A's report by day is exact
    by_day = {
        line.key: line
        for line in selectors.report_lines(
            advertiser_id=setup["a"], date_from=date(2026, 3, 1), date_to=date(2026, 3, 2), group_by="day"
        )
    }
    d1, d2 = by_day[date(2026, 3, 1)], by_day[date(2026, 3, 2)]
    assert (d1.impressions, d1.clicks, d1.conversions, d1.spend, d1.revenue) == (
        14,
        2,
        1,
        Decimal("0.80"),
        Decimal("25.00"),
    )
    assert (d1.ctr, d1.cvr, d1.cpc, d1.cpa, d1.roas) == (2 / 14, 0.5, Decimal("0.40"), Decimal("0.80"), 31.25)
    assert (d2.impressions, d2.clicks, d2.ctr, d2.cvr, d2.cpc, d2.cpa, d2.roas) == (
        5,
        0,
        0.0,
        None,
        None,
        None,
        None,
    )
    by_segment = {
        line.key: line.impressions
        for line in selectors.report_lines(
            advertiser_id=setup["a"], date_from=date(2026, 3, 1), date_to=date(2026, 3, 2), group_by="segment"
        )
    }
    assert by_segment == {"runners": 15, None: 4}
    b_total = selectors.report_total(
        selectors.report_lines(
            advertiser_id=setup["b"], date_from=date(2026, 3, 1), date_to=date(2026, 3, 2), group_by="campaign"
        )
    )
    assert (b_total.impressions, b_total.conversions, b_total.spend, b_total.revenue) == (
        3,
        1,
        Decimal("1.506"),
        Decimal("10.00"),
    )
    live = list(_rows())
    # when rebuilt from zero, then identical
    settle("reports", rebuild=True)
    assert list(_rows()) == live


def test_reports_random_stream_rebuild_equals_live(setup: dict[str, int]) -> None:
    rng = random.Random(11)
    projection = projections.get_projection("reports")
    expected_clicks = 0
    for _ in range(8):
        batch = []
        for _ in range(rng.randrange(10, 40)):
            who = rng.choice(["a", "b"])
            kind = rng.choice(["AdImpressed", "AdImpressed", "AdClicked", "ConversionAttributed"])
            expected_clicks += kind == "AdClicked"
            batch.append(
                ad_event(
                    kind,
                    at=DAY1 + timedelta(hours=rng.randrange(72)),
                    campaign=setup[f"c{who}"],
                    creative=setup[f"cr{who}"],
                    advertiser=setup[who],
                    placement=rng.choice(["home-top", "pdp"]),
                    segment=rng.choice(["s1", "s2", None]),
                    charge=rng.choice(["0", "0.25", "1.10"]),
                    revenue="12.34",
                )
            )
        append(batch)
        if rng.random() < 0.5:
            projections.catch_up(projection)
    settle("reports")
    live = list(_rows())
    settle("reports", rebuild=True)
    assert list(_rows()) == live
    assert sum(r["clicks"] for r in live) == expected_clicks


def test_reports_api(http: httpx.Client, setup: dict[str, int]) -> None:
    append(known_stream(setup))
    settle("reports")
    token = api_key_create(scopes=["advertiser"], advertiser_id=setup["a"]).key
    r = http.get("/api/v1/reports?from=2026-03-01&to=2026-03-02&group_by=day", headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows"] == [
        {
            "day": "2026-03-01",
            "impressions": 14,
            "clicks": 2,
            "conversions": 1,
            "spend": "0.80",
            "revenue": "25.00",
            "ctr": round(2 / 14, 6),
            "cvr": 0.5,
            "cpc": "0.40",
            "cpa": "0.80",
            "roas": 31.25,
        },
        {
            "day": "2026-03-02",
            "impressions": 5,
            "clicks": 0,
            "conversions": 0,
            "spend": "0.00",
            "revenue": "0.00",
            "ctr": 0.0,
            "cvr": None,
            "cpc": None,
            "cpa": None,
            "roas": None,
        },
    ]
    assert body["totals"]["impressions"] == 19 and body["currency"] == "EUR"
    r = http.get("/api/v1/reports?from=2026-03-01&to=2026-03-02&group_by=placement", headers=auth(token))
    assert {row["placement"]: row["impressions"] for row in r.json()["rows"]} == {"home-top": 15, "pdp": 4}
    r = http.get("/api/v1/reports?from=2026-03-01&to=2026-03-02&group_by=campaign", headers=auth(token))
    assert [(row["campaign_id"], row["name"]) for row in r.json()["rows"]] == [(setup["ca"], "Spring sale")]
    r = http.get("/api/v1/reports?from=2026-03-05&to=2026-03-01", headers=auth(token))
    assert r.status_code == 400 and "from" in r.json()["error"]["fields"]
    r = http.get("/api/v1/reports?group_by=week", headers=auth(token))
    assert r.status_code == 400 and "group_by" in r.json()["error"]["fields"]
