"""The auction as pure functions: expected value per bid model (eCPM), generalized
second price over the placement's slots with the floor as reserve, prices in the bid's
unit (ADR 0040).

eCPM (value of 1000 impressions): cpm → bid; cpc → bid · p_click · 1000;
cpa → bid · p_conversion · 1000, where p_conversion is P(conversion | impression)
(= p_click · P(conversion | click); ranking.selectors.ScoredBatch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

PRICE_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class Bid:
    creative_id: int
    campaign_id: int
    advertiser_id: int
    bid_model: str  # cpc | cpm | cpa
    bid: Decimal
    p_click: float
    p_conversion: float
    ecpm: float  # the ranking value (exploratory bids rank by a sampled p_click)
    exploratory: bool = False


@dataclass(frozen=True)
class Win:
    bid: Bid
    position: int  # 1-based
    clearing_ecpm: float  # max(next bid's eCPM, floor): what the slot costs per 1000 impressions
    price: Decimal  # in the bid's unit: per click (cpc), per 1000 impressions (cpm), per conversion (cpa)


def ecpm_of(bid_model: str, bid: Decimal, p_click: float, p_conversion: float) -> float:
    b = float(bid)
    if bid_model == "cpm":
        return b
    if bid_model == "cpc":
        return b * p_click * 1000.0
    if bid_model == "cpa":
        return b * p_conversion * 1000.0
    raise ValueError(f"unknown bid model {bid_model!r}")


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


def rank_order(bids: Sequence[Bid]) -> list[Bid]:
    """Highest eCPM first; ties go to the lower creative id (deterministic)."""
    return sorted(bids, key=lambda b: (-b.ecpm, b.creative_id))


def run_auction(
    bids: Sequence[Bid], *, slots: int, floor_cpm: Decimal, one_per_advertiser: bool = True, presorted: bool = False
) -> tuple[list[Win], dict[int, str]]:
    """GSP: bids below the floor (reserve) are out; with `one_per_advertiser` only each
    advertiser's best bid competes; the k-th winner pays max(eCPM of the (k+1)-th
    competing bid, floor), converted to its bid unit. Returns (winners, {creative_id:
    reason} for the losers: "below_floor", "advertiser_already_shown", "outbid").

    `presorted`: keep the given order (baseline policies rank by another rule; each winner
    still pays max(floor, min(its own eCPM, the next bid's eCPM)))."""
    floor = float(floor_cpm)
    lost: dict[int, str] = {}
    competing: list[Bid] = []
    advertisers: set[int] = set()
    for b in bids if presorted else rank_order(bids):
        if b.ecpm <= 0 or b.ecpm < floor:
            lost[b.creative_id] = "below_floor"
        elif one_per_advertiser and b.advertiser_id in advertisers:
            lost[b.creative_id] = "advertiser_already_shown"
        else:
            competing.append(b)
            advertisers.add(b.advertiser_id)
    wins = []
    for i, b in enumerate(competing[:slots]):
        nxt = competing[i + 1].ecpm if i + 1 < len(competing) else 0.0
        clearing = max(min(nxt, b.ecpm), floor)
        wins.append(Win(bid=b, position=i + 1, clearing_ecpm=clearing, price=price_in_unit(b, clearing)))
    for b in competing[slots:]:
        lost[b.creative_id] = "outbid"
    return wins, lost
