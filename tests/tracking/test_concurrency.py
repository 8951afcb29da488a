"""Concurrency over real HTTP against the live server and real Postgres: many shoppers'
threads hitting one click URL record one click and one charge; clicks on many different
tokens of one small-budget CPC campaign never overspend by more than one charge."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adplatform.eventlog import selectors as eventlog
from campaigns.models import CampaignDaySpend, CampaignSpend
from tracking import services

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16


def hammer(base_url: str, urls_per_thread: list[list[str]]) -> list[int]:
    """Each thread GETs its URLs; all start together. Returns every status code."""
    barrier = threading.Barrier(len(urls_per_thread))
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(urls: list[str]) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=60) as client:
                barrier.wait()
                for url in urls:
                    code = client.get(url).status_code
                    with lock:
                        statuses.append(code)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(urls,)) for urls in urls_per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return statuses


def clicks() -> list[dict[str, Any]]:
    return [e.data for e in eventlog.iter_all(types=["AdClicked"])]


def test_one_click_url_hit_concurrently_records_one_click_and_one_charge(live_server: Any, campaign: Callable) -> None:
    # given one CPC ad at 0.50 and its click URL
    ad = campaign(bid=Decimal("0.50"))
    _, click_url = services.tracking_urls(ad=ad)
    # when 16 threads click it 3 times each, all at once
    statuses = hammer(live_server.url, [[click_url] * 3 for _ in range(THREADS)])
    # then every request redirected, and exactly one impression, one click and one charge exist
    assert statuses == [302] * THREADS * 3
    assert eventlog.count_events(types=["AdImpressed"]) == 1
    assert [c["charge"] for c in clicks()] == ["0.50"]
    assert CampaignSpend.objects.get(campaign_id=ad.campaign_id).spent == Decimal("0.50")
    assert CampaignDaySpend.objects.get(campaign_id=ad.campaign_id).spent == Decimal("0.50")


def test_clicks_on_many_tokens_never_overspend_by_more_than_one_charge(live_server: Any, campaign: Callable) -> None:
    # given a CPC campaign at 0.30 per click with a 1.00 daily budget, and 48 served ads of
    # it (different decisions, so different tokens)
    base = campaign(bid=Decimal("0.30"), daily_budget=Decimal("1.00"), total_budget=Decimal("100.00"))
    ads = [replace(base, request_id=str(uuid.uuid4())) for _ in range(THREADS * 3)]
    click_urls = [services.tracking_urls(ad=ad)[1] for ad in ads]
    # when 16 threads click three different tokens each, all at once
    statuses = hammer(live_server.url, [click_urls[i::THREADS] for i in range(THREADS)])
    # then every click counted and redirected
    assert statuses == [302] * len(ads)
    recorded = clicks()
    assert len(recorded) == len(ads)
    # and spend stopped at the first charge that reached the budget: 0, 0.30, 0.60, 0.90 were
    # below 1.00, so four charges passed (1.20 = budget + less than one charge), no more
    charged = sorted((Decimal(c["charge"]) for c in recorded), reverse=True)
    assert charged == [Decimal("0.30")] * 4 + [Decimal(0)] * (len(ads) - 4)
    total = CampaignSpend.objects.get(campaign_id=base.campaign_id).spent
    assert total == Decimal("1.20") == sum(charged)
    assert total < Decimal("1.00") + Decimal("0.30")
    assert CampaignDaySpend.objects.get(campaign_id=base.campaign_id).spent == total
