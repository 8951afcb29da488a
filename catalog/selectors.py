"""Reads of the product catalog for other apps (frozen dataclasses, never ORM objects)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .models import Product

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProductInfo:
    product_id: str
    title: str
    category_path: tuple[str, ...]
    brand: str
    price: Decimal
    currency: str
    url: str
    image_url: str
    in_stock: bool


def _info(p: Product) -> ProductInfo:
    return ProductInfo(
        product_id=p.product_id,
        title=p.title,
        category_path=tuple(p.category_path),
        brand=p.brand,
        price=p.price,
        currency=p.currency,
        url=p.url,
        image_url=p.image_url,
        in_stock=p.in_stock,
    )


def products_by_id(product_ids: Iterable[str]) -> dict[str, ProductInfo]:
    return {p.product_id: _info(p) for p in Product.objects.filter(product_id__in=list(product_ids))}


def product_facts(*, limit: int) -> list[tuple[str, tuple[str, ...], str, float]]:
    """(product_id, category path, brand, price) of up to `limit` products: the facts the
    click model's behaviour sequence reads, for a per-process cache."""
    rows = Product.objects.values_list("product_id", "category_path", "brand", "price")[:limit]
    return [(pid, tuple(path), brand, float(price)) for pid, path, brand, price in rows]


@dataclass(frozen=True)
class ProductFacts:
    category_path: tuple[str, ...]
    brand: str
    price: float


_FACTS_TTL = 600.0
FACTS_PRELOAD_MAX = 200_000  # catalogues up to this size are read whole into each process
_facts_cache: dict[str, tuple[float, ProductFacts | None]] = {}
_preload: dict[str, float] = {"started_at": -1e18}


def _preload_facts() -> None:
    """Read the whole catalogue's facts into the cache (a background thread, every
    _FACTS_TTL): with 100k shoppers nearly every /rank request names a product (viewed
    before, or the page's) that is not cached yet."""
    from django.db import connection

    try:
        if product_count() <= FACTS_PRELOAD_MAX:
            now = time.monotonic()
            for pid, path, brand, price in product_facts(limit=FACTS_PRELOAD_MAX):
                _facts_cache[pid] = (now, ProductFacts(path, brand, price))
    except Exception:  # noqa: BLE001 - requests keep reading their misses
        logger.exception("product facts preload failed")
    finally:
        connection.close()


def product_facts_cached(product_ids: Iterable[str]) -> dict[str, ProductFacts]:
    """Facts of these products (unknown ids left out) from a per-process cache of up to
    10 minutes: the whole catalogue when it is small enough (read in the background),
    else one query for the misses. For the serving path (/rank)."""
    pids = tuple(product_ids)
    if not pids:
        return {}
    now = time.monotonic()
    if now - _preload["started_at"] > _FACTS_TTL:
        _preload["started_at"] = now
        threading.Thread(target=_preload_facts, name="product-facts", daemon=True).start()
    missing = [p for p in pids if p not in _facts_cache or now - _facts_cache[p][0] > _FACTS_TTL]
    if missing:
        found = products_by_id(missing)
        for pid in missing:
            info = found.get(pid)
            facts = ProductFacts(tuple(info.category_path), info.brand, float(info.price)) if info else None
            _facts_cache[pid] = (now, facts)
        if len(_facts_cache) > 2 * FACTS_PRELOAD_MAX:
            _facts_cache.clear()
    out: dict[str, ProductFacts] = {}
    for pid in pids:
        entry = _facts_cache.get(pid)
        if entry is not None and entry[1] is not None:
            out[pid] = entry[1]
    return out


def clear_facts_cache() -> None:
    _facts_cache.clear()
    _preload["started_at"] = -1e18


def product_count() -> int:
    return Product.objects.count()


def product_list(*, category: str | None = None, query: str | None = None, limit: int = 24) -> list[ProductInfo]:
    """Products for browsing (the demo storefront): in a category (any level of the path)
    and/or whose title contains `query`, in-stock first."""
    qs = Product.objects.all()
    if category:
        qs = qs.filter(category_path__contains=[category])
    if query:
        qs = qs.filter(title__icontains=query)
    return [_info(p) for p in qs.order_by("-in_stock", "product_id")[:limit]]


def category_tree() -> list[tuple[str, list[str]]]:
    """Top-level categories with their sub-categories (next path level), sorted by name."""
    tree: dict[str, set[str]] = {}
    for path in Product.objects.values_list("category_path", flat=True).distinct():
        if path:
            tree.setdefault(path[0], set()).update(path[1:2])
    return [(top, sorted(children)) for top, children in sorted(tree.items())]
