"""Reads of the product catalog for other apps (frozen dataclasses, never ORM objects)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .models import Product


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
