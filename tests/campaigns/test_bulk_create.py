"""Bulk creation for importers and seeding: the same rules, events and read-model rows as
one-by-one creation, in one transaction, all or nothing; the projection replays it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from adplatform.eventlog import selectors as eventlog
from campaigns import services
from campaigns.models import Advertiser, Campaign, Creative
from campaigns.validation import RuleViolationError

from .conftest import ACTOR, campaign_spec, creative_spec, settle
from .test_state import _snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def _row(model: Any, pk: int) -> dict[str, Any]:
    row = model.objects.filter(pk=pk).values().get()
    return {k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at", "campaign_id", "advertiser_id")}


def _events_of(stream: str) -> list[tuple[str, dict[str, Any]]]:
    drop = ("creative_id", "campaign_id", "advertiser_id")
    return [(e.type, {k: v for k, v in e.data.items() if k not in drop}) for e in eventlog.stream_events(stream=stream)]


@override_settings(AUTO_APPROVE_CREATIVES=True)
def test_bulk_creation_writes_what_one_by_one_creation_writes() -> None:
    # given one advertiser + campaign + creative created one by one (one spec: same times)
    spec = campaign_spec()
    one_adv = services.advertiser_create(name="Acme", currency="EUR", timezone_name="Europe/Berlin", actor=ACTOR)
    one_camp = services.campaign_create(advertiser_id=one_adv, spec=spec, actor=ACTOR, status="draft")
    one_cr = services.creative_create(advertiser_id=one_adv, campaign_id=one_camp, spec=creative_spec(), actor=ACTOR)
    # when the same are created in bulk, three of each
    advs = services.advertisers_create(
        advertisers=[services.AdvertiserInput("Acme", "EUR", "Europe/Berlin")] * 3, actor=ACTOR
    )
    camps = services.campaigns_create(campaigns=[services.CampaignInput(a, spec, "draft") for a in advs], actor=ACTOR)
    crs = services.creatives_create(
        creatives=[services.CreativeInput(a, c, creative_spec()) for a, c in zip(advs, camps, strict=True)],
        actor=ACTOR,
    )
    # then ids are fresh and ascending, and every row and event equals the one-by-one ones
    assert advs == sorted(advs) and min(advs) > one_adv and len(set(crs)) == 3
    for a, c, cr in zip(advs, camps, crs, strict=True):
        assert _row(Advertiser, a) == _row(Advertiser, one_adv)
        assert _row(Campaign, c) == _row(Campaign, one_camp)
        assert _row(Creative, cr) == _row(Creative, one_cr)
        assert Creative.objects.get(pk=cr).status == "approved"
        assert _events_of(f"creative:{cr}") == _events_of(f"creative:{one_cr}")
        assert _events_of(f"campaign:{c}") == _events_of(f"campaign:{one_camp}")
    # and the projection rebuilt from zero gives the same state
    settle("campaigns")
    live = _snapshot()
    settle("campaigns", rebuild=True)
    assert _snapshot() == live


def test_one_bad_item_stores_nothing_and_names_each_error_by_index(make_advertiser: Callable) -> None:
    # given two advertisers' campaigns
    a, b = make_advertiser(), make_advertiser(name="Beta")
    ca = services.campaign_create(advertiser_id=a, spec=campaign_spec(), actor=ACTOR)
    before = eventlog.count_events()
    # when a creative batch has a blank headline and one pointing at another advertiser's campaign
    with pytest.raises(RuleViolationError) as err:
        services.creatives_create(
            creatives=[
                services.CreativeInput(a, ca, creative_spec()),
                services.CreativeInput(a, ca, creative_spec(headline=" ")),
                services.CreativeInput(b, ca, creative_spec()),
                services.CreativeInput(a, "x", creative_spec(colour="red")),
            ],
            actor=ACTOR,
        )
    # then each error is keyed by its index and field, and nothing was stored
    assert set(err.value.errors) == {"1.headline", "2.campaign_id", "3.campaign_id", "3.colour"}
    assert eventlog.count_events() == before and Creative.objects.count() == 0
    # and a campaign batch with an unknown advertiser and a bad budget is refused the same way
    with pytest.raises(RuleViolationError) as err:
        services.campaigns_create(
            campaigns=[
                services.CampaignInput(a, campaign_spec(daily_budget=-1)),
                services.CampaignInput(999_999, campaign_spec()),
                services.CampaignInput(b, campaign_spec(), status="live"),
            ],
            actor=ACTOR,
        )
    assert set(err.value.errors) == {"0.daily_budget", "1.advertiser_id", "2.status"}
    assert eventlog.count_events() == before and Campaign.objects.count() == 1
    with pytest.raises(RuleViolationError) as err:
        services.advertisers_create(
            advertisers=[services.AdvertiserInput("ok"), services.AdvertiserInput("")], actor=ACTOR
        )
    assert set(err.value.errors) == {"1.name"} and Advertiser.objects.count() == 2


def test_single_creation_keeps_its_error_contract(make_advertiser: Callable) -> None:
    # the one-by-one services still answer with plain field names and NotFoundError
    a = make_advertiser()
    with pytest.raises(services.NotFoundError):
        services.campaign_create(advertiser_id=999_999, spec=campaign_spec(), actor=ACTOR)
    with pytest.raises(RuleViolationError) as err:
        services.creative_create(advertiser_id=a, campaign_id=123, spec=creative_spec(headline=""), actor=ACTOR)
    assert set(err.value.errors) == {"headline", "campaign_id"}
    assert services.advertisers_create(advertisers=[], actor=ACTOR) == []
