"""Imported ad history (ranking.services.ad_exposures_import): idempotent by exposure key,
never billed, and counted by the reports projection like served ads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adplatform.eventlog import selectors as eventlog
from campaigns import selectors as campaigns_selectors
from campaigns import services as campaigns
from ranking.events import AD_CLICKED, AD_IMPRESSED, CONVERSION_ATTRIBUTED
from ranking.services import AdExposure, ad_exposures_import, exposure_request_id
from tests.campaigns.conftest import campaign_spec, creative_spec, settle

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# projections read committed events only: each test commits for real
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def creative(transactional_db: None) -> tuple[int, int, int]:
    adv = campaigns.advertiser_create(name="Acme", currency="EUR", timezone_name="UTC", actor="test")
    camp = campaigns.campaign_create(advertiser_id=adv, spec=campaign_spec(), actor="test")
    cr = campaigns.creative_create(advertiser_id=adv, campaign_id=camp, spec=creative_spec(), actor="test")
    return adv, camp, cr


def _exposures(adv: int, camp: int, cr: int) -> list[AdExposure]:
    common: dict[str, Any] = {"creative_id": cr, "campaign_id": camp, "advertiser_id": adv, "placement": "home_top"}
    return [
        AdExposure(exposure_key="t:1", user_id="u-1", at=AT, **common),
        AdExposure(exposure_key="t:2", user_id="u-2", at=AT, clicked_at=AT + timedelta(seconds=5), **common),
        AdExposure(
            exposure_key="t:3",
            user_id="u-3",
            at=AT,
            clicked_at=AT + timedelta(seconds=5),
            converted_at=AT + timedelta(minutes=10),
            order_id="o-9",
            revenue=Decimal("42.50"),
            currency="EUR",
            **common,
        ),
    ]


def test_import_appends_impressions_clicks_conversions_once(creative: tuple[int, int, int]) -> None:
    # given three exposures: one plain, one clicked, one clicked and converted
    adv, camp, cr = creative
    exposures = _exposures(adv, camp, cr)

    # when imported twice
    first = ad_exposures_import(exposures=exposures)
    second = ad_exposures_import(exposures=exposures)

    # then 3 impressions + 2 clicks + 1 conversion are stored once, the re-run adds nothing
    assert (first.stored, first.duplicates) == (6, 0)
    assert (second.stored, second.duplicates) == (0, 6)
    assert eventlog.count_events(types=[AD_IMPRESSED.name]) == 3
    assert eventlog.count_events(types=[AD_CLICKED.name]) == 2
    assert eventlog.count_events(types=[CONVERSION_ATTRIBUTED.name]) == 1
    stream = eventlog.stream_events(stream=f"decision:{exposure_request_id('t:3')}")
    assert [e.type for e in stream] == [AD_IMPRESSED.name, AD_CLICKED.name, CONVERSION_ATTRIBUTED.name]
    assert {e.user_key for e in stream} == {"u-3"}
    assert stream[2].data["revenue"] == "42.50"
    assert all(e.data["charge"] == "0" for e in stream)


def test_imported_history_feeds_reports_without_spend(creative: tuple[int, int, int]) -> None:
    # given imported history
    adv, camp, cr = creative
    ad_exposures_import(exposures=_exposures(adv, camp, cr))

    # when the reports projection catches up
    settle("reports")

    # then the day's line counts it, with revenue and no spend
    (line,) = campaigns_selectors.report_lines(
        advertiser_id=adv, date_from=AT.date(), date_to=AT.date(), group_by="campaign"
    )
    assert (line.impressions, line.clicks, line.conversions) == (3, 2, 1)
    assert (line.spend, line.revenue) == (Decimal("0"), Decimal("42.50"))
