"""The rules, directly (no database): each failure names the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from campaigns import validation as v

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _campaign(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "x",
        "objective": "clicks",
        "bid_model": "cpc",
        "bid": Decimal("0.50"),
        "currency": "EUR",
        "daily_budget": Decimal("10"),
        "total_budget": Decimal("100"),
        "start": NOW,
        "end": NOW + timedelta(days=1),
        "timezone": "Europe/Berlin",
        "dayparts": [],
        "pacing": "even",
        "frequency_caps": [],
        "targeting": {},
    }
    spec.update(overrides)
    return spec


def _errors(**overrides: Any) -> dict[str, list[str]]:
    return v.check_campaign(
        _campaign(**overrides), now=NOW, advertiser_currency="EUR", placement_keys=frozenset({"home-top"})
    )


def test_a_valid_campaign_has_no_errors() -> None:
    assert _errors() == {}
    assert _errors(daily_budget=None) == {} and _errors(total_budget=None) == {} and _errors(end=None) == {}


def test_dayparts_may_touch_but_not_overlap() -> None:
    touching = [{"days": [0], "start": "09:00", "end": "12:00"}, {"days": [0], "start": "12:00", "end": "24:00"}]
    assert _errors(dayparts=touching) == {}
    nested = [
        {"days": [0, 1], "start": "08:00", "end": "20:00"},
        {"days": [2], "start": "09:00", "end": "10:00"},
        {"days": [1], "start": "09:00", "end": "10:00"},
        {"days": [1], "start": "11:00", "end": "12:00"},
    ]
    assert _errors(dayparts=nested) == {
        "dayparts.2": [v.ERROR_DAYPART_OVERLAP.format(other=0, day="Tuesday")],
        "dayparts.3": [v.ERROR_DAYPART_OVERLAP.format(other=0, day="Tuesday")],
    }
    assert _errors(dayparts=[{"days": [7, 7], "start": "9:00", "end": "25:00"}]) == {
        "dayparts.0.days": [v.ERROR_DAYPART_DAYS],
        "dayparts.0.start": [v.ERROR_DAYPART_TIME],
        "dayparts.0.end": [v.ERROR_DAYPART_TIME],
    }
    assert _errors(dayparts={"days": [0]}) == {"dayparts": [v.ERROR_DAYPART_SHAPE]}


@pytest.mark.parametrize(
    ("bid_model", "bid", "daily", "error"),
    [
        ("cpm", Decimal("5000"), Decimal("10"), None),  # one impression costs 5.00 ≤ 10
        ("cpm", Decimal("20000"), Decimal("10"), "impression"),  # one impression costs 20.00 > 10
        ("cpc", Decimal("11"), Decimal("10"), "click"),
    ],
)
def test_bid_must_buy_something_within_the_budget(
    bid_model: str, bid: Decimal, daily: Decimal, error: str | None
) -> None:
    errors = _errors(objective="conversions", bid_model=bid_model, bid=bid, daily_budget=daily, total_budget=None)
    if error is None:
        assert errors == {}
    else:
        assert errors["bid"][0].startswith(f"The bid buys nothing: one {error} costs")


def test_bid_model_must_fit_the_objective() -> None:
    assert _errors(objective="clicks", bid_model="cpa")["bid_model"] == [
        v.ERROR_BID_MODEL_OBJECTIVE.format(bid_model="cpa", objective="clicks", allowed="cpc, cpm")
    ]


def test_amounts_times_and_codes() -> None:
    errors = _errors(
        bid=Decimal("0.12345"),
        daily_budget=Decimal("-1"),
        currency="eur",
        timezone="localtime",
        start=datetime(2026, 3, 1, 12),
        pacing="turbo",
    )
    assert errors["bid"] == [v.ERROR_AMOUNT_PRECISION]
    assert errors["daily_budget"] == [v.ERROR_AMOUNT_POSITIVE]
    assert errors["currency"] == [v.ERROR_CURRENCY.format(value="eur")]
    assert errors["timezone"] == [v.ERROR_TIMEZONE.format(value="localtime")]
    assert errors["start"] == [v.ERROR_TZ_AWARE]
    assert errors["pacing"] == [v.ERROR_CHOICE.format(choices="even, asap")]
    assert _errors(end=NOW - timedelta(hours=1), start=NOW - timedelta(days=1))["end"] == [v.ERROR_END_IN_PAST]


def test_caps_and_targeting() -> None:
    caps = [
        {"scope": "campaign", "max": 0, "window_seconds": 10},
        {"scope": "campaign", "max": 2, "window_seconds": 3600},
        {"scope": "campaign", "max": 5, "window_seconds": 3600},
        {"scope": "user", "max": 1, "window_seconds": 3600, "extra": 1},
    ]
    assert _errors(frequency_caps=caps) == {
        "frequency_caps.0.max": [v.ERROR_CAP_MAX],
        "frequency_caps.0.window_seconds": [v.ERROR_CAP_WINDOW],
        "frequency_caps.2": [v.ERROR_CAP_DUPLICATE],
        "frequency_caps.3": [v.ERROR_CAP_SHAPE],
    }
    targeting = {"geo": ["DE", "de", "DE-BE"], "page_types": ["home", "checkout"], "colour": ["red"], "keywords": [""]}
    assert _errors(targeting=targeting) == {
        "targeting.geo": [v.ERROR_GEO.format(value="de")],
        "targeting.page_types": [v.ERROR_TARGETING_VALUE.format(value="checkout", choices=", ".join(v.PAGE_TYPES))],
        "targeting.colour": [v.ERROR_TARGETING_UNKNOWN_KEY.format(key="colour", keys=", ".join(v.TARGETING_KEYS))],
        "targeting.keywords": [v.ERROR_TARGETING_LIST],
    }


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("Best {category} deals from {brand}", None),
        ("Use {{braces}} literally", None),
        ("Hi {name}", "slot"),
        ("{category!r}", "template"),
        ("{price:.2f}", "template"),
        ("{}", "template"),
        ("{category", "template"),
        ("{category.__class__}", "slot"),
    ],
)
def test_variant_templates_use_only_allowed_slots(template: str, error: str | None) -> None:
    spec = {
        "headline": "h",
        "image_url": "https://a.example/i.png",
        "landing_url": "https://a.example/",
        "variants": [{"headline": template, "body": None}],
    }
    errors = v.check_creative(spec)
    if error is None:
        assert errors == {}
    elif error == "template":
        assert errors == {"variants.0.headline": [v.ERROR_VARIANT_TEMPLATE]}
    else:
        assert list(errors) == ["variants.0.headline"] and errors["variants.0.headline"][0].startswith("Unknown slot")


def test_creative_urls_must_be_http() -> None:
    spec = {"headline": " ", "image_url": "ftp://a.example/i.png", "landing_url": "javascript:alert(1)", "variants": []}
    assert v.check_creative(spec) == {
        "headline": [v.ERROR_HEADLINE_BLANK],
        "image_url": [v.ERROR_URL],
        "landing_url": [v.ERROR_URL],
    }


def test_null_characters_are_refused_everywhere_text_is_stored() -> None:
    # Postgres cannot store NUL in text or jsonb: it must be a 400, never a 500
    spec = {
        "headline": "a\x00",
        "image_url": "https://a.example/i.png",
        "landing_url": "https://a.example/",
        "variants": [{"headline": "{category}\x00", "body": "b\x00"}],
    }
    assert v.check_creative(spec) == {
        "headline": [v.ERROR_NUL],
        "variants.0.headline": [v.ERROR_NUL],
        "variants.0.body": [v.ERROR_NUL],
    }
    assert _errors(targeting={"keywords": ["a\x00"]}) == {"targeting.keywords": [v.ERROR_TARGETING_LIST]}
    assert _errors(name="n\x00") == {"name": [v.ERROR_NUL]}
