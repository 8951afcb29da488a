"""HTML pages of the tracking app: the demo storefront (`/storefront/`), a catalogue with
ad slots rendered by the storefront snippet. Reads only (catalog and campaigns selectors)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from campaigns import selectors as campaigns_selectors
from catalog import selectors as catalog_selectors

# page type → placement key (the demo marketplace's placements, marketplace/world.py)
DEMO_PLACEMENTS = {
    "home": "home_top",
    "category": "category_side",
    "product": "product_below",
    "search": "search_top",
}
_MAX_PARAM = 200


def _param(request: HttpRequest, name: str) -> str:
    return (request.GET.get(name) or "").strip()[:_MAX_PARAM]


class StorefrontPage(View):
    """GET /storefront/?category=&product=&q=&user=&key= — `key` (or the
    STOREFRONT_PUBLISHABLE_KEY setting) is the publishable key the snippet calls the API
    with; `user` pins the shopper id (else the snippet keeps one in localStorage)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        category, product_id, query = _param(request, "category"), _param(request, "product"), _param(request, "q")
        user, key = _param(request, "user"), _param(request, "key") or settings.STOREFRONT_PUBLISHABLE_KEY
        keep = {k: v for k, v in (("user", user), ("key", _param(request, "key"))) if v}

        def link(**params: str) -> str:
            return "?" + urlencode({**params, **keep})

        product = catalog_selectors.products_by_id([product_id]).get(product_id) if product_id else None
        if product is not None:
            page_type, category = "product", (product.category_path[-1] if product.category_path else "")
            products = [p for p in catalog_selectors.product_list(category=category, limit=9) if p != product][:8]
            title = product.title
        elif query:
            page_type, products, title = "search", catalog_selectors.product_list(query=query), f"Results for “{query}”"
        elif category:
            page_type, products, title = "category", catalog_selectors.product_list(category=category), category
        else:
            page_type, products, title = "home", catalog_selectors.product_list(limit=12), "Featured"
        placement_key = DEMO_PLACEMENTS[page_type]
        placement = campaigns_selectors.placement_get(key=placement_key)
        context: dict[str, Any] = {
            "title": title,
            "page_type": page_type,
            "product": product,
            "products": [(p, link(product=p.product_id)) for p in products],
            "category": category,
            "query": query,
            "tree": [
                (top, link(category=top), [(leaf, link(category=leaf)) for leaf in leaves])
                for top, leaves in catalog_selectors.category_tree()
            ],
            "home_link": link(),
            "keep": keep,
            "slot": {"placement": placement_key, "limit": placement.slots if placement else 2},
            "key": key,
            "user": user,
        }
        return render(request, "tracking/storefront.html", context)
