"""The auction's prices, computed by hand: GSP over slots, floor as reserve, prices in the
bid's unit, rounding up, never above the bid, one ad per advertiser."""

from __future__ import annotations

from decimal import Decimal

import pytest

from delivery.auction import Bid, ecpm_of, price_in_unit, run_auction


def bid(cid: int, model: str, amount: str, p_click: float = 0.0, p_conv: float = 0.0, adv: int | None = None) -> Bid:
    b = Decimal(amount)
    return Bid(
        cid, 100 + cid, adv if adv is not None else cid, model, b, p_click, p_conv, ecpm_of(model, b, p_click, p_conv)
    )


def test_ecpm_by_bid_model() -> None:
    assert ecpm_of("cpc", Decimal("0.50"), 0.02, 0.0) == pytest.approx(10.0)
    assert ecpm_of("cpm", Decimal("8.00"), 0.5, 0.5) == 8.0
    # cpa: p_conversion is P(conversion | impression)
    assert ecpm_of("cpa", Decimal("20.00"), 0.02, 0.0001) == pytest.approx(2.0)


def test_gsp_each_winner_pays_the_next_ecpm_in_its_own_unit() -> None:
    # given A cpc 0.50 × 2 % (eCPM 10), B cpm 8 (eCPM 8), C cpc 1.00 × 0.5 % (eCPM 5), D cpa 20 × 0.01 % (eCPM 2)
    bids = [bid(3, "cpc", "1.00", 0.005), bid(1, "cpc", "0.50", 0.02), bid(4, "cpa", "20.00", 0.02, 0.0001),
            bid(2, "cpm", "8.00")]  # fmt: skip
    # when two slots are auctioned with a floor of 1.00 CPM
    wins, lost = run_auction(bids, slots=2, floor_cpm=Decimal("1.00"))
    # then A pays B's eCPM per click: 8 / (1000 × 0.02) = 0.40; B pays C's eCPM: 5.00 per mille
    assert [(w.bid.creative_id, w.position, w.price) for w in wins] == [
        (1, 1, Decimal("0.4000")),
        (2, 2, Decimal("5.0000")),
    ]
    assert [w.clearing_ecpm for w in wins] == [pytest.approx(8.0), pytest.approx(5.0)]
    assert lost == {3: "outbid", 4: "outbid"}


def test_floor_is_the_reserve_and_the_minimum_price() -> None:
    # given the same bids and a floor of 6.00 CPM: C (5) and D (2) are below it
    bids = [bid(1, "cpc", "0.50", 0.02), bid(2, "cpm", "8.00"), bid(3, "cpc", "1.00", 0.005),
            bid(4, "cpa", "20.00", 0.02, 0.0001)]  # fmt: skip
    wins, lost = run_auction(bids, slots=2, floor_cpm=Decimal("6.00"))
    # then B, last competing bid, pays the floor (6.00 CPM) and A pays B's eCPM
    assert [(w.bid.creative_id, w.price) for w in wins] == [(1, Decimal("0.4000")), (2, Decimal("6.0000"))]
    assert lost == {3: "below_floor", 4: "below_floor"}


def test_a_lone_bidder_pays_the_floor_equivalent() -> None:
    # floor 1.00 CPM for a cpc bid with p_click 2 %: 1 / (1000 × 0.02) = 0.05 per click
    wins, _ = run_auction([bid(1, "cpc", "0.50", 0.02)], slots=2, floor_cpm=Decimal("1.00"))
    assert [w.price for w in wins] == [Decimal("0.0500")]
    # without a floor the price is 0
    wins, _ = run_auction([bid(1, "cpc", "0.50", 0.02)], slots=2, floor_cpm=Decimal("0"))
    assert [w.price for w in wins] == [Decimal("0.0000")]


def test_prices_round_up_and_never_exceed_the_bid() -> None:
    # 7 / (1000 × 0.03) = 0.23333… rounds up to 0.2334 (never below the second price)
    b = bid(1, "cpc", "0.50", 0.03)
    assert price_in_unit(b, 7.0) == Decimal("0.2334")
    # equal eCPMs: the winner pays exactly its own bid, no more
    wins, _ = run_auction([bid(1, "cpc", "0.50", 0.02), bid(2, "cpc", "0.50", 0.02)], slots=1,
                          floor_cpm=Decimal("0"))  # fmt: skip
    assert [(w.bid.creative_id, w.price) for w in wins] == [(1, Decimal("0.5000"))]
    # a floor above the bid's value: not served at all
    _, lost = run_auction([bid(1, "cpm", "0.50")], slots=1, floor_cpm=Decimal("0.51"))
    assert lost == {1: "below_floor"}


def test_one_ad_per_advertiser_and_the_price_is_set_by_the_next_other_advertiser() -> None:
    # given advertiser 9 with eCPMs 10 and 9, advertiser 7 with eCPM 4
    bids = [bid(1, "cpm", "10.00", adv=9), bid(2, "cpm", "9.00", adv=9), bid(3, "cpm", "4.00", adv=7)]
    wins, lost = run_auction(bids, slots=2, floor_cpm=Decimal("1.00"))
    assert [(w.bid.creative_id, w.price) for w in wins] == [(1, Decimal("4.0000")), (3, Decimal("1.0000"))]
    assert lost == {2: "advertiser_already_shown"}
    # configured off: both of advertiser 9's ads are shown
    wins, _ = run_auction(bids, slots=2, floor_cpm=Decimal("1.00"), one_per_advertiser=False)
    assert [(w.bid.creative_id, w.price) for w in wins] == [(1, Decimal("9.0000")), (2, Decimal("4.0000"))]


def test_presorted_order_keeps_the_policy_order_and_caps_each_price_at_its_own_value() -> None:
    # a baseline ranks eCPM 4 above eCPM 10: the first pays min(own 4, next 10) = 4
    bids = [bid(3, "cpm", "4.00"), bid(1, "cpm", "10.00")]
    wins, _ = run_auction(bids, slots=2, floor_cpm=Decimal("1.00"), presorted=True)
    assert [(w.bid.creative_id, w.price) for w in wins] == [(3, Decimal("4.0000")), (1, Decimal("1.0000"))]
