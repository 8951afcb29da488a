"""The auction as pure functions: expected value per bid model (eCPM), generalized
second price over the placement's slots with the floor as reserve, prices in the bid's
unit (ADR 0040), ranked on eCPM plus the advertiser's expected order value (ADR 0044).

eCPM (value of 1000 impressions): cpm → bid; cpc → bid · p_click · 1000;
cpa → bid · p_conversion · 1000, where p_conversion is P(conversion | impression)
(= p_click · P(conversion | click); ranking.selectors.ScoredBatch).

Rank score = eCPM + λ · value + μ · p_click · 1000, value = p_conversion · order value ·
1000 (the revenue the advertiser expects from 1000 impressions), μ a money value of a
shopper's click (relevance: what an ad the shopper wants is worth to the marketplace
beyond its price, ADR 0045). The k-th winner pays the least eCPM that keeps its score
above the next one: max(floor, min(own eCPM, score of the (k+1)-th − own bonus)), the
bonus being λ · value + μ · p_click · 1000; with λ = μ = 0 this is the plain eCPM GSP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from catalog.selectors import ProductInfo

PRICE_QUANTUM = Decimal("0.0001")


# not frozen: a frozen dataclass's __init__ sets each of its ten fields through
# object.__setattr__ (1.7 µs a Bid against 0.45 µs with slots), and /rank builds one per
# candidate. Nothing mutates a Bid; `_with_explorer` builds a new one.
@dataclass(slots=True)
class Bid:
    creative_id: int
    campaign_id: int
    advertiser_id: int
    bid_model: str  # cpc | cpm | cpa
    bid: Decimal
    p_click: float
    p_conversion: float
    ecpm: float  # what the platform expects to earn per 1000 impressions (exploratory bids: by a sampled p_click)
    exploratory: bool = False
    value: float = 0.0  # the advertiser's expected order revenue per 1000 impressions (value_of)


@dataclass(frozen=True)
class Win:
    bid: Bid
    position: int  # 1-based
    clearing_ecpm: float  # the least eCPM that keeps the slot (≥ floor): what it costs per 1000 impressions
    price: Decimal  # in the bid's unit: per click (cpc), per 1000 impressions (cpm), per conversion (cpa)
    score: float = 0.0  # the rank score it won with (eCPM + λ · value)


def ecpm_of(bid_model: str, bid: Decimal, p_click: float, p_conversion: float) -> float:
    b = float(bid)
    if bid_model == "cpm":
        return b
    if bid_model == "cpc":
        return b * p_click * 1000.0
    if bid_model == "cpa":
        return b * p_conversion * 1000.0
    raise ValueError(f"unknown bid model {bid_model!r}")


def value_of(p_conversion: float, order_value: Decimal | None) -> float:
    """The advertiser's expected attributed order revenue of 1000 impressions, in the
    order value's currency; 0 without a known order value."""
    if order_value is None or order_value <= 0 or p_conversion <= 0:
        return 0.0
    return p_conversion * float(order_value) * 1000.0


def order_value(product: ProductInfo | None, bid_currency: str) -> Decimal | None:
    """The order value a conversion is expected to bring, in the bid's currency: the
    advertised product's price; None without a product or in another currency (no FX)."""
    if product is None or product.currency != bid_currency:
        return None
    return product.price


def _bonus(b: Bid, value_weight: float, click_weight: float) -> float:
    return value_weight * b.value + click_weight * 1000.0 * b.p_click


def rank_score(b: Bid, value_weight: float, click_weight: float = 0.0) -> float:
    return b.ecpm + _bonus(b, value_weight, click_weight)


def _per_unit_factor(b: Bid) -> float:
    """eCPM of a price of 1 in the bid's unit."""
    if b.bid_model == "cpm":
        return 1.0
    return 1000.0 * (b.p_click if b.bid_model == "cpc" else b.p_conversion)


def price_in_unit(b: Bid, ecpm: float) -> Decimal:
    """The price in the bid's unit whose eCPM is `ecpm`, rounded up to PRICE_QUANTUM (never
    below the second price or the floor-equivalent), never above the bid."""
    factor = _per_unit_factor(b)
    if factor <= 0:
        return b.bid
    price = Decimal(repr(ecpm / factor)).quantize(PRICE_QUANTUM, rounding=ROUND_CEILING)
    return min(price, b.bid)


def rank_order(bids: Sequence[Bid], value_weight: float = 0.0, click_weight: float = 0.0) -> list[Bid]:
    """Highest rank score first; ties go to the lower creative id (deterministic)."""
    return sorted(bids, key=lambda b: (-rank_score(b, value_weight, click_weight), b.creative_id))


def run_auction(
    bids: Sequence[Bid],
    *,
    slots: int,
    floor_cpm: Decimal,
    one_per_advertiser: bool = True,
    presorted: bool = False,
    value_weight: float = 0.0,
    click_weight: float = 0.0,
) -> tuple[list[Win], dict[int, str]]:
    """GSP on the rank score eCPM + value_weight · value + click_weight · p_click · 1000:
    bids whose eCPM is below the floor (reserve) are out; with `one_per_advertiser` only
    each advertiser's best bid competes; the k-th winner pays the least eCPM that keeps its
    score at the (k+1)-th competing bid's, max(floor, min(own eCPM, next score − own
    bonus)), converted to its bid unit (both weights 0: the next bid's eCPM). Returns (winners,
    {creative_id: reason} for the losers: "below_floor", "advertiser_already_shown",
    "outbid").

    `presorted`: keep the given order (baseline policies rank by another rule; each winner
    still pays by the formula above, capped at its own eCPM)."""
    floor = float(floor_cpm)
    lost: dict[int, str] = {}
    competing: list[Bid] = []
    advertisers: set[int] = set()
    for b in bids if presorted else rank_order(bids, value_weight, click_weight):
        if b.ecpm <= 0 or b.ecpm < floor:
            lost[b.creative_id] = "below_floor"
        elif one_per_advertiser and b.advertiser_id in advertisers:
            lost[b.creative_id] = "advertiser_already_shown"
        else:
            competing.append(b)
            advertisers.add(b.advertiser_id)
    wins = []
    for i, b in enumerate(competing[:slots]):
        nxt = rank_score(competing[i + 1], value_weight, click_weight) if i + 1 < len(competing) else 0.0
        clearing = max(min(nxt - _bonus(b, value_weight, click_weight), b.ecpm), floor)
        wins.append(
            Win(
                bid=b,
                position=i + 1,
                clearing_ecpm=clearing,
                price=price_in_unit(b, clearing),
                score=rank_score(b, value_weight, click_weight),
            )
        )
    for b in competing[slots:]:
        lost[b.creative_id] = "outbid"
    return wins, lost
