"""The profile fold: pure functions that turn a shopper's behaviour events into profile
state. Shared by the live projection, replay, and point-in-time reads (`profile_get(as_of=)`),
so all three compute the same thing.

Every part of the state is order-independent, so late events land where they belong in
time: interest scores are sums of w·exp(-λ(ref - t)) kept decayed to `ref` (the newest
event time); recency lists keep the newest N by event time; cart lines keep the latest
add and the latest removal per product; consent follows the newest event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adplatform.eventlog.selectors import StoredEvent

PROFILE_EVENT_TYPES = frozenset(
    {"PageViewed", "ProductViewed", "SearchPerformed", "CartItemAdded", "CartItemRemoved", "OrderPlaced"}
)
# Interest weight of one interaction (per purchased line for orders).
WEIGHTS = {"ProductViewed": 1.0, "CartItemAdded": 3.0, "OrderPlaced": 5.0}
MAX_RECENT_PRODUCTS = 20
MAX_RECENT_QUERIES = 10
MAX_PRODUCTS = 200  # product interest scores kept per shopper (the strongest)
MAX_CART_LINES = 100
MAX_DEVICE_NAME = 32


@dataclass(frozen=True)
class ProductFacts:
    """What the fold needs to know about a product (from catalog.selectors)."""

    category_path: tuple[str, ...]
    brand: str
    price: float


def decay_rate(half_life_days: float) -> float:
    """λ per second."""
    return math.log(2) / (half_life_days * 86400.0)


def epoch(ts: datetime) -> float:
    return ts.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def empty_state() -> dict[str, Any]:
    return {
        "consent": True,
        "consent_at": None,
        "ref": None,
        "first": None,
        "last": None,
        "frequency": 0,
        "orders": 0,
        "monetary": Decimal(0),
        "last_order": None,
        "categories": {},
        "brands": {},
        "products": {},
        "price_sum": 0.0,
        "price_weight": 0.0,
        "devices": {},
        "recent_products": [],
        "recent_queries": [],
        "cart": {},
        "last_position": 0,
    }


def normalize_query(query: Any) -> str:
    return " ".join(str(query).lower().split())[:200]


def _device(data: Mapping[str, Any]) -> str | None:
    device = data.get("device")
    if not isinstance(device, str) or not device.strip():
        return None
    return device.strip().lower()[:MAX_DEVICE_NAME]


def _scale(mapping: dict[str, float], factor: float) -> None:
    for key in mapping:
        mapping[key] *= factor


def _newest(items: list[list[Any]], limit: int) -> list[list[Any]]:
    """Keep the newest time per key, then the `limit` newest keys (ties by key)."""
    best: dict[str, float] = {}
    for key, t in items:
        if key not in best or t > best[key]:
            best[key] = t
    ordered = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [[k, t] for k, t in ordered]


def fold(
    state: dict[str, Any],
    events: Iterable[StoredEvent],
    products: Mapping[str, ProductFacts],
    *,
    lam: float,
) -> dict[str, Any]:
    """Fold one shopper's events (any order, any batch split) into `state` (mutated)."""
    consenting: list[StoredEvent] = []
    for ev in events:
        if ev.type not in PROFILE_EVENT_TYPES:
            continue
        t = epoch(ev.occurred_at)
        state["last_position"] = max(state["last_position"], ev.position)
        allowed = ev.meta.get("consent") is not False
        # consent follows the newest event; on a tie an opt-out wins (order-independent)
        if state["consent_at"] is None or t > state["consent_at"] or (t == state["consent_at"] and not allowed):
            state["consent_at"] = t
            state["consent"] = allowed
        if allowed:
            consenting.append(ev)
    if not consenting:
        return state

    newest = max(epoch(ev.occurred_at) for ev in consenting)
    ref = state["ref"]
    if ref is None or newest > ref:
        if ref is not None:
            factor = math.exp(-lam * (newest - ref))
            _scale(state["categories"], factor)
            _scale(state["brands"], factor)
            _scale(state["products"], factor)
            state["price_sum"] *= factor
            state["price_weight"] *= factor
        state["ref"] = ref = newest

    recent_products = state["recent_products"]
    recent_queries = state["recent_queries"]
    cart = state["cart"]
    for ev in consenting:
        t = epoch(ev.occurred_at)
        d = ev.data
        state["frequency"] += 1
        state["first"] = t if state["first"] is None else min(state["first"], t)
        state["last"] = t if state["last"] is None else max(state["last"], t)
        device = _device(d)
        if device:
            state["devices"][device] = state["devices"].get(device, 0) + 1
        decay = math.exp(-lam * (ref - t))
        lines: list[tuple[str, float | None]] = []
        if ev.type in ("ProductViewed", "CartItemAdded"):
            price = d.get("price")
            lines.append((str(d["product_id"]), float(price) if price is not None else None))
        elif ev.type == "OrderPlaced":
            state["orders"] += 1
            state["monetary"] += Decimal(str(d.get("revenue") or 0))
            state["last_order"] = t if state["last_order"] is None else max(state["last_order"], t)
            for item in d.get("items") or ():
                lines.append((str(item["product_id"]), float(item["price"]) if item.get("price") is not None else None))
                _cart_mark(cart, str(item["product_id"]), removed=t)
        elif ev.type == "SearchPerformed":
            q = normalize_query(d.get("query", ""))
            if q:
                recent_queries.append([q, t])
        elif ev.type == "CartItemRemoved":
            _cart_mark(cart, str(d["product_id"]), removed=t)
        if ev.type == "CartItemAdded":
            _cart_mark(cart, str(d["product_id"]), added=t)

        w = WEIGHTS.get(ev.type, 0.0) * decay
        for pid, event_price in lines:
            recent_products.append([pid, t])
            state["products"][pid] = state["products"].get(pid, 0.0) + w
            facts = products.get(pid)
            if facts is not None:
                for category in dict.fromkeys(facts.category_path):
                    state["categories"][category] = state["categories"].get(category, 0.0) + w
                if facts.brand:
                    state["brands"][facts.brand] = state["brands"].get(facts.brand, 0.0) + w
            price = event_price if event_price is not None else (facts.price if facts is not None else None)
            if price is not None and price > 0:
                state["price_sum"] += w * price
                state["price_weight"] += w

    state["recent_products"] = _newest(recent_products, MAX_RECENT_PRODUCTS)
    state["recent_queries"] = _newest(recent_queries, MAX_RECENT_QUERIES)
    if len(state["products"]) > MAX_PRODUCTS:
        keep = sorted(state["products"].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_PRODUCTS]
        state["products"] = dict(keep)
    if len(cart) > MAX_CART_LINES:
        keep_lines = sorted(cart.items(), key=lambda kv: (-max(v for v in kv[1] if v is not None), kv[0]))
        state["cart"] = dict(keep_lines[:MAX_CART_LINES])
    return state


def _cart_mark(
    cart: dict[str, list[float | None]], pid: str, *, added: float | None = None, removed: float | None = None
) -> None:
    line = cart.setdefault(pid, [None, None])
    if added is not None and (line[0] is None or added > line[0]):
        line[0] = added
    if removed is not None and (line[1] is None or removed > line[1]):
        line[1] = removed


def cart_items(cart: Mapping[str, list[float | None]]) -> tuple[str, ...]:
    """Products whose latest add is newer than their latest removal/purchase, newest first."""
    live = [(pid, a) for pid, (a, r) in cart.items() if a is not None and (r is None or a > r)]
    return tuple(pid for pid, _ in sorted(live, key=lambda x: (-x[1], x[0])))


def decayed(scores: Mapping[str, float], *, ref: float | None, at: float, lam: float) -> dict[str, float]:
    """Scores stored at `ref` decayed to time `at` (≥ ref), strongest first."""
    if ref is None:
        return {}
    factor = math.exp(-lam * max(0.0, at - ref))
    return {k: v * factor for k, v in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))}
