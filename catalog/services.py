"""Writes for the product catalog. Every change is a ProductUpserted event; unchanged
products write nothing, so re-sending a feed is free and idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from adplatform.eventlog.services import NewEvent, append_events

from .events import PRODUCT_UPSERTED
from .models import Product


@dataclass(frozen=True)
class ProductInput:
    product_id: str
    title: str
    category_path: tuple[str, ...]
    brand: str
    price: Decimal
    currency: str
    url: str
    image_url: str
    in_stock: bool

    def snapshot(self) -> dict[str, Any]:
        d = asdict(self)
        d["category_path"] = list(self.category_path)
        d["price"] = format(self.price.normalize(), "f")
        return d


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    unchanged: int


def _current(product: Product) -> ProductInput:
    return ProductInput(
        product_id=product.product_id,
        title=product.title,
        category_path=tuple(product.category_path),
        brand=product.brand,
        price=Decimal(product.price),
        currency=product.currency,
        url=product.url,
        image_url=product.image_url,
        in_stock=product.in_stock,
    )


def products_upsert(*, products: Sequence[ProductInput], actor: str = "api") -> UpsertResult:
    now = timezone.now()
    created = updated = unchanged = 0
    latest = {p.product_id: p for p in products}  # last occurrence wins within a batch
    with transaction.atomic():
        existing = {
            p.product_id: p
            for p in Product.objects.select_for_update().filter(product_id__in=list(latest)).order_by("product_id")
        }
        events, rows_new, rows_changed = [], [], []
        for pid in sorted(latest):
            item = latest[pid]
            old = existing.get(pid)
            if old is not None and _current(old).snapshot() == item.snapshot():
                unchanged += 1
                continue
            events.append(
                NewEvent(
                    type=PRODUCT_UPSERTED.name,
                    stream=f"product:{pid}",
                    data=item.snapshot(),
                    occurred_at=now,
                    meta={"actor": actor},
                )
            )
            fields = asdict(item) | {"category_path": list(item.category_path), "updated_at": now}
            if old is None:
                created += 1
                rows_new.append(Product(**fields))
            else:
                updated += 1
                for k, v in fields.items():
                    setattr(old, k, v)
                rows_changed.append(old)
        append_events(events)
        Product.objects.bulk_create(rows_new)
        if rows_changed:
            Product.objects.bulk_update(
                rows_changed,
                ["title", "category_path", "brand", "price", "currency", "url", "image_url", "in_stock", "updated_at"],
            )
    return UpsertResult(created=created, updated=updated, unchanged=unchanged)
