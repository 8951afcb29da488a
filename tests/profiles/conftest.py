"""Fixtures for the profiles tests: catalog and behaviour state set up through services."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from adplatform.eventlog import projections
from behaviour.services import events_ingest
from catalog.services import ProductInput, products_upsert

from ..conftest import behaviour_event


def product(
    pid: str, path: Iterable[str], brand: str, price: str, *, title: str = "", in_stock: bool = True
) -> ProductInput:
    return ProductInput(
        product_id=pid,
        title=title or f"{brand} {pid}",
        category_path=tuple(path),
        brand=brand,
        price=Decimal(price),
        currency="EUR",
        url=f"https://shop.example/p/{pid}",
        image_url="",
        in_stock=in_stock,
    )


def seed_catalog(*products: ProductInput) -> None:
    products_upsert(products=list(products), actor="test")


def ingest(*events: dict[str, Any], now: datetime | None = None) -> None:
    result = events_ingest(raw_events=list(events), now=now)
    assert result.rejected == [], result.rejected


def apply_profiles() -> int:
    """Run the profiles app's projections (shopper profiles and product docs)."""
    projections.catch_up(projections.get_projection("product_docs"))
    return projections.catch_up(projections.get_projection("profiles"))


def ev(type_: str, at: datetime, user: str = "u-1", **props: Any) -> dict[str, Any]:
    consent = props.pop("consent", None)
    extra = {} if consent is None else {"consent": consent}
    return behaviour_event(type_, user_id=user, timestamp=at, properties=props or None, **extra)
