"""The demo storefront page (server side): the catalogue by category, product and search,
with one ad slot per page type configured for the snippet, and the snippet served."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from campaigns import services as campaigns_services
from catalog.services import ProductInput, products_upsert

pytestmark = pytest.mark.django_db


def seed() -> None:
    products_upsert(
        products=[
            ProductInput(
                f"sku-{i}",
                f"{leaf} model {i}",
                ("Outdoor", leaf),
                "Alpen",
                Decimal(20 + i),
                "EUR",
                f"https://shop.example/p/sku-{i}",
                "",
                True,
            )  # fmt: skip
            for i, leaf in enumerate(["Tents", "Tents", "Boots", "Boots", "Boots"])
        ]
    )
    spec = {"key": "category_side", "page_types": ["category"], "slots": 3, "floor_cpm": Decimal("0.50")}
    campaigns_services.placement_upsert(spec=spec, actor="test")


def test_category_page_lists_its_products_and_a_side_slot() -> None:
    seed()
    r = Client().get("/storefront/?category=Boots&key=pk-123&user=shopper-9")
    html = r.content.decode()
    assert r.status_code == 200
    assert [f"sku-{i}" for i in range(5) if f"?product=sku-{i}&amp;user=shopper-9&amp;key=pk-123" in html] == [
        "sku-2",
        "sku-3",
        "sku-4",
    ]
    assert (
        'data-adp-placement="category_side" data-adp-limit="3"\n           data-adp-page-type="category" '
        'data-adp-category-id="Boots"' in html
    )
    assert 'data-key="pk-123" data-user-id="shopper-9"' in html
    assert '<body data-adp-page-type="category"' in html


def test_product_and_search_pages() -> None:
    seed()
    product = Client().get("/storefront/?product=sku-0&key=k").content.decode()
    assert 'data-adp-page-type="product" data-adp-product-id="sku-0" data-adp-category-id="Tents"' in product
    assert "<h1>Tents model 0</h1>" in product and "?product=sku-1&amp;key=k" in product
    assert "?product=sku-2" not in product  # only the same category below the product
    search = Client().get("/storefront/?q=boots+model+3&key=k").content.decode()
    assert 'data-adp-placement="search_top" data-adp-limit="2"' in search  # no such placement: 2 slots
    assert "?product=sku-3&amp;key=k" in search and "?product=sku-4" not in search


def test_page_without_key_explains_how_to_get_one_and_escapes_input() -> None:
    r = Client().get("/storefront/?q=%3Cscript%3Ealert(1)%3C/script%3E")
    html = r.content.decode()
    assert r.status_code == 200
    assert "No publishable key" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_snippet_is_served_without_a_cdn() -> None:
    r = Client().get("/static/tracking/adplatform.js")
    assert r.status_code == 200
    body = b"".join(r.streaming_content) if r.streaming else r.content  # type: ignore[attr-defined]
    assert b"IntersectionObserver" in body and b"/api/v1/rank" in body
