"""The auction's prices, computed by hand: GSP over slots, floor as reserve, prices in the
bid's unit, rounding up, never above the bid, one ad per advertiser; the value-aware rank
score eCPM + λ · value (ADR 0044) and + μ · p_click · 1000 (ADR 0045), and their prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.selectors import ProductInfo
from delivery.auction import Bid, ecpm_of, order_value, price_in_unit, rank_order, run_auction, value_of


def bid(
    cid: int,
    model: str,
    amount: str,
    p_click: float = 0.0,
    p_conv: float = 0.0,
    adv: int | None = None,
    order: str | None = None,
) -> Bid:
    b = Decimal(amount)
    return Bid(
        cid,
        100 + cid,
        adv if adv is not None else cid,
        model,
        b,
        p_click,
        p_conv,
        ecpm_of(model, b, p_click, p_conv),
        value=value_of(p_conv, Decimal(order) if order else None),
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


def product(price: str, currency: str = "EUR") -> ProductInfo:
    return ProductInfo("sku-1", "Shoe", ("shoes",), "Fleet", Decimal(price), currency, "", "", True)


def test_value_is_the_expected_order_revenue_of_1000_impressions_in_the_bid_currency() -> None:
    # p_conversion 0.2 % × order value 20.00 × 1000 = 40 per mille
    assert value_of(0.002, Decimal("20.00")) == pytest.approx(40.0)
    assert value_of(0.002, None) == 0.0
    assert value_of(0.0, Decimal("20.00")) == 0.0
    # the product's price is the order value, unless its currency is not the bid's (no FX)
    assert order_value(product("20.00"), "EUR") == Decimal("20.00")
    assert order_value(product("20.00", "USD"), "EUR") is None
    assert order_value(None, "EUR") is None


def value_bids() -> list[Bid]:
    # A cpc 0.50 × 2 %: eCPM 10, value 0.2 % × 20.00 = 40; B cpm 12: eCPM 12, no product;
    # C cpc 1.00 × 1 %: eCPM 10, value 0.05 % × 10.00 = 5
    return [bid(1, "cpc", "0.50", 0.02, 0.002, order="20.00"), bid(2, "cpm", "12.00"),
            bid(3, "cpc", "1.00", 0.01, 0.0005, order="10.00")]  # fmt: skip


def test_without_value_weight_the_auction_is_the_plain_ecpm_gsp() -> None:
    # λ = 0: B (12) above A (10, ties with C on the lower id); B pays 10, A pays C's 10 = its bid
    wins, lost = run_auction(value_bids(), slots=2, floor_cpm=Decimal("1.00"))
    assert [(w.bid.creative_id, w.price, w.score) for w in wins] == [
        (2, Decimal("10.0000"), 12.0),
        (1, Decimal("0.5000"), 10.0),
    ]
    assert lost == {3: "outbid"}


def test_value_weight_ranks_the_valuable_ad_first_and_it_pays_less() -> None:
    # given λ = 0.1: scores A 10 + 4 = 14, B 12, C 10 + 0.5 = 10.5
    assert [b.creative_id for b in rank_order(value_bids(), 0.1)] == [1, 2, 3]
    wins, lost = run_auction(value_bids(), slots=2, floor_cpm=Decimal("1.00"), value_weight=0.1)
    # then A keeps the top slot paying eCPM 12 − 4 = 8: 8 / (1000 × 2 %) = 0.40 per click (0.50 without
    # the value term, in the second slot); B pays C's score 10.5 (it has no value to discount)
    assert [(w.bid.creative_id, w.position, w.clearing_ecpm, w.price) for w in wins] == [
        (1, 1, pytest.approx(8.0), Decimal("0.4000")),
        (2, 2, pytest.approx(10.5), Decimal("10.5000")),
    ]
    assert [w.score for w in wins] == [pytest.approx(14.0), 12.0]
    assert lost == {3: "outbid"}


def test_a_high_value_ad_pays_no_less_than_the_floor_and_the_floor_stays_on_ecpm() -> None:
    # given A's order value 1000.00: value 2000, λ · value = 200 ≫ B's 12
    a = bid(1, "cpc", "0.50", 0.02, 0.002, order="1000.00")
    # and D: eCPM 0.5 below the 1.00 floor however valuable its product (λ · value 400)
    d = bid(4, "cpc", "0.05", 0.01, 0.004, order="1000.00")
    wins, lost = run_auction([a, bid(2, "cpm", "12.00"), d], slots=2, floor_cpm=Decimal("1.00"), value_weight=0.1)
    # then A pays the floor-equivalent 1 / (1000 × 2 %) = 0.05 per click and B, last, the floor
    assert [(w.bid.creative_id, w.price) for w in wins] == [(1, Decimal("0.0500")), (2, Decimal("1.0000"))]
    assert lost == {4: "below_floor"}


def test_value_weight_picks_each_advertisers_best_score_and_discounts_a_cpa_price() -> None:
    # advertiser 9: cpm 10 (no value) and cpa 20 × 0.05 % (eCPM 10, value 0.05 % × 40.00 = 20); advertiser 7: cpm 9
    bids = [bid(1, "cpm", "10.00", adv=9), bid(2, "cpa", "20.00", 0.01, 0.0005, adv=9, order="40.00"),
            bid(3, "cpm", "9.00", adv=7)]  # fmt: skip
    wins, lost = run_auction(bids, slots=2, floor_cpm=Decimal("1.00"), value_weight=0.5)
    # scores 10, 10 + 10 = 20, 9: the cpa ad competes for advertiser 9 and pays eCPM 9 − 10 → floor 1:
    # 1 / (1000 × 0.05 %) = 2.00 per conversion
    assert [(w.bid.creative_id, w.price) for w in wins] == [(2, Decimal("2.0000")), (3, Decimal("1.0000"))]
    assert lost == {1: "advertiser_already_shown"}


def test_presorted_with_value_weight_still_caps_each_price_at_its_own_ecpm() -> None:
    # a baseline order: B (12, no value) above A (10, value 40); λ = 0.1: B pays min(12, 14) = 12
    a, b = bid(1, "cpc", "0.50", 0.02, 0.002, order="20.00"), bid(2, "cpm", "12.00")
    wins, _ = run_auction([b, a], slots=2, floor_cpm=Decimal("1.00"), presorted=True, value_weight=0.1)
    assert [(w.bid.creative_id, w.price) for w in wins] == [(2, Decimal("12.0000")), (1, Decimal("0.0500"))]


def test_click_value_ranks_the_likelier_click_first_and_it_pays_less() -> None:
    # given A: cpm 10.00 at p_click 1 %, B: cpc 0.40 at p_click 3 % (eCPM 12), C: cpm 11.00 at 2 %
    a = bid(1, "cpm", "10.00", 0.01)
    b = bid(2, "cpc", "0.40", 0.03)
    c = bid(3, "cpm", "11.00", 0.02)
    # when μ = 0.2 per click: scores A 10 + 2 = 12, B 12 + 6 = 18, C 11 + 4 = 15
    wins, lost = run_auction([a, b, c], slots=2, floor_cpm=Decimal("1.00"), click_weight=0.2)
    # then B keeps the top slot paying eCPM 15 − 6 = 9: 9 / (1000 × 3 %) = 0.30 per click, and
    # C pays A's score 12 less its own bonus 4 = 8 (cpm, under its bid of 11)
    assert [(w.bid.creative_id, w.clearing_ecpm, w.price) for w in wins] == [
        (2, pytest.approx(9.0), Decimal("0.3000")),
        (3, pytest.approx(8.0), Decimal("8.0000")),
    ]
    assert [w.score for w in wins] == [pytest.approx(18.0), pytest.approx(15.0)]
    assert lost == {1: "outbid"}
    # and without the click value the plain eCPM order returns: B 12, C 11, A 10
    plain, _ = run_auction([a, b, c], slots=2, floor_cpm=Decimal("1.00"))
    assert [(w.bid.creative_id, w.price) for w in plain] == [(2, Decimal("0.3667")), (3, Decimal("10.0000"))]
