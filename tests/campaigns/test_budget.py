"""budget_charge: per campaign-local day and lifetime spend, never more than one charge
over a budget, under real concurrency (real Postgres, real threads)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction

from campaigns import selectors, services
from campaigns.models import CampaignDaySpend, CampaignSpend

pytestmark = pytest.mark.django_db(transaction=True)


def test_charges_accumulate_per_local_day_and_lifetime(make_advertiser: Callable, make_campaign: Callable) -> None:
    # given a Berlin campaign with 10.00/day and 100.00 in total
    adv = make_advertiser()
    cid = make_campaign(adv)
    # when charging at 23:30 UTC (00:30 next day in Berlin) and at 12:00 UTC
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    noon = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with transaction.atomic():
        a = services.budget_charge(campaign_id=cid, amount=Decimal("1.25"), at=late)
    with transaction.atomic():
        b = services.budget_charge(campaign_id=cid, amount=Decimal("0.75"), at=noon)
    # then they land on two Berlin days and one lifetime row
    assert a == services.ChargeOutcome(Decimal("1.25"), Decimal("1.25"), Decimal("1.25"), False)
    assert b == services.ChargeOutcome(Decimal("0.75"), Decimal("0.75"), Decimal("2.00"), False)
    days = dict(CampaignDaySpend.objects.filter(campaign_id=cid).values_list("day", "spent"))
    assert days == {datetime(2026, 3, 3).date(): Decimal("1.25"), datetime(2026, 3, 2).date(): Decimal("0.75")}
    assert CampaignSpend.objects.get(campaign_id=cid).spent == Decimal("2.00")


def test_charge_stops_at_daily_budget_and_leaves_lifetime_untouched(
    make_advertiser: Callable, make_campaign: Callable
) -> None:
    adv = make_advertiser()
    cid = make_campaign(adv, daily_budget=Decimal("1.00"), total_budget=Decimal("100.00"), bid=Decimal("0.40"))
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    outcomes = []
    for _ in range(4):
        with transaction.atomic():
            outcomes.append(services.budget_charge(campaign_id=cid, amount=Decimal("0.40"), at=at))
    # spend-before < budget: 0, 0.40, 0.80 are charged (ends at 1.20), the 4th is refused
    assert [o.charged for o in outcomes] == [Decimal("0.40")] * 3 + [Decimal(0)]
    assert outcomes[2] == services.ChargeOutcome(Decimal("0.40"), Decimal("1.20"), Decimal("1.20"), True)
    assert outcomes[3] == services.ChargeOutcome(Decimal(0), Decimal("1.20"), Decimal("1.20"), True)
    assert CampaignSpend.objects.get(campaign_id=cid).spent == Decimal("1.20")
    # the next local day has a fresh daily budget
    with transaction.atomic():
        nxt = services.budget_charge(campaign_id=cid, amount=Decimal("0.40"), at=datetime(2026, 3, 3, 12, tzinfo=UTC))
    assert nxt == services.ChargeOutcome(Decimal("0.40"), Decimal("0.40"), Decimal("1.60"), False)


def test_charge_stops_at_total_budget(make_advertiser: Callable, make_campaign: Callable) -> None:
    adv = make_advertiser()
    cid = make_campaign(adv, daily_budget=None, total_budget=Decimal("1.00"), bid=Decimal("0.50"))
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    charged = []
    for _ in range(3):
        with transaction.atomic():
            charged.append(services.budget_charge(campaign_id=cid, amount=Decimal("0.50"), at=at).charged)
    assert charged == [Decimal("0.50"), Decimal("0.50"), Decimal(0)]
    assert selectors.spend_of(campaign_id=cid, at=at, timezone_name="Europe/Berlin") == (Decimal("1.00"),) * 2


def test_unknown_campaign_is_not_found(db: None) -> None:
    with pytest.raises(services.NotFoundError):
        services.budget_charge(campaign_id=999_999, amount=Decimal(1), at=datetime.now(UTC))


def _charge_in_threads(n: int, charge_once: Callable[[], Decimal], times: int = 1) -> list[Decimal]:
    """n threads released together, each calling `charge_once` `times` times on its own
    connection; the charges, in completion order (a thread's error fails the test)."""
    barrier = threading.Barrier(n)
    charged: list[Decimal] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(times):
                got = charge_once()
                with lock:
                    charged.append(got)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return charged


@pytest.mark.parametrize(
    "budgets",
    [{"daily_budget": Decimal("5.00"), "total_budget": None}, {"daily_budget": None, "total_budget": Decimal("5.00")}],
)
def test_concurrent_charges_never_overspend_by_more_than_one_charge(
    make_advertiser: Callable, make_campaign: Callable, budgets: dict
) -> None:
    # given a campaign with a 5.00 budget and 16 threads charging 0.30 twenty times each
    adv = make_advertiser()
    cid = make_campaign(adv, bid=Decimal("0.30"), **budgets)
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    amount = Decimal("0.30")

    def charge() -> Decimal:
        with transaction.atomic():
            return services.budget_charge(campaign_id=cid, amount=amount, at=at).charged

    charged = _charge_in_threads(16, charge, times=20)
    # then every attempt got an answer, and spend went over 5.00 by less than one charge
    assert len(charged) == 320
    total = CampaignSpend.objects.get(campaign_id=cid).spent
    assert total == sum(charged)
    assert Decimal("5.00") <= total < Decimal("5.00") + amount
    assert total == Decimal("5.10")  # 17 charges: 16 × 0.30 = 4.80 < 5.00, the 17th passes
    assert CampaignDaySpend.objects.get(campaign_id=cid).spent == total


def test_concurrent_first_charges_of_a_day_are_all_charged(make_advertiser: Callable, make_campaign: Callable) -> None:
    # given a campaign with room in its budgets and no spend row for the day yet, and 8 threads
    # that each charge once at the same moment, holding their transaction open for a while (as
    # the tracking transaction does while it appends the ad event)
    adv = make_advertiser()
    cid = make_campaign(adv, bid=Decimal("0.30"), daily_budget=Decimal("100.00"), total_budget=Decimal("1000.00"))
    at = datetime(2026, 3, 3, 12, tzinfo=UTC)

    def charge() -> Decimal:
        with transaction.atomic():
            out = services.budget_charge(campaign_id=cid, amount=Decimal("0.30"), at=at)
            time.sleep(0.2)
        return out.charged

    charged = _charge_in_threads(8, charge)
    # then none of them lost its charge to the one that created the day's row
    assert sorted(charged) == [Decimal("0.30")] * 8
    assert CampaignDaySpend.objects.get(campaign_id=cid, day=at.date()).spent == Decimal("2.40")
    assert CampaignSpend.objects.get(campaign_id=cid).spent == Decimal("2.40")
