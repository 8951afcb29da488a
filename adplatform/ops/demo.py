"""Demo set-up: an admin login, API keys and a seeded world, all through services."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands

from adplatform.access import scopes
from adplatform.access.services import api_key_create
from behaviour.services import events_ingest
from catalog.services import ProductInput, products_upsert


@dataclass(frozen=True)
class DemoCredentials:
    admin_user: str
    admin_password: str
    storefront_key: str
    operator_key: str


def demo_credentials_create() -> DemoCredentials:
    user_model = get_user_model()
    password = secrets.token_urlsafe(9)
    admin, _ = user_model.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
    admin.is_staff = admin.is_superuser = True
    admin.set_password(password)
    admin.save()
    storefront = api_key_create(
        scopes=[scopes.EVENTS_WRITE, scopes.ADS_RANK, scopes.PROFILES_READ], name="demo storefront"
    )
    operator = api_key_create(scopes=list(scopes.ALL_PLATFORM_SCOPES), name="demo operator")
    return DemoCredentials("admin", password, storefront.key, operator.key)


def demo_world_seed(*, size: str, seed: int) -> str:
    """Seed the demo marketplace. Uses the marketplace generator's `seed_demo` when
    installed; otherwise a small fixed catalogue with a day of browsing."""
    if "seed_demo" in get_commands():
        call_command("seed_demo", "--size", size, "--seed", str(seed))
        return f"marketplace world '{size}' (seed {seed})"
    return _seed_minimal()


def _seed_minimal() -> str:
    categories = [("Outdoor", "Hiking boots"), ("Outdoor", "Tents"), ("Kitchen", "Coffee makers")]
    products = [
        ProductInput(
            product_id=f"sku-{i}",
            title=f"{categories[i % 3][1]} model {i}",
            category_path=categories[i % 3],
            brand=["Alpen", "Nordkap", "Brewster"][i % 3],
            price=Decimal(20 + 7 * i),
            currency="EUR",
            url=f"https://shop.example/p/sku-{i}",
            image_url="",
            in_stock=True,
        )
        for i in range(30)
    ]
    products_upsert(products=products, actor="demo")
    now = datetime.now(UTC)
    ns = uuid.UUID("6f1c4e0a-3f43-4b9f-9d55-2b7a1f0f2d10")
    events = [
        {
            "event_id": str(uuid.uuid5(ns, f"pv-{u}-{k}")),
            "type": "product_view",
            "user_id": f"shopper-{u}",
            "timestamp": (now - timedelta(minutes=5 * k + u)).isoformat(),
            "properties": {"product_id": f"sku-{(u * 7 + k) % 30}"},
        }
        for u in range(50)
        for k in range(10)
    ]
    result = events_ingest(raw_events=events, source="demo")
    return f"minimal catalogue: {len(products)} products, {result.accepted} events"
