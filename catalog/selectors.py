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


def product_count() -> int:
    return Product.objects.count()
