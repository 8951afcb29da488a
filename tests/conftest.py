"""Shared fixtures: API keys, a real HTTP client against pytest-django's live server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adplatform.access import selectors as access_selectors
from adplatform.access.services import api_key_create


@pytest.fixture(autouse=True, scope="session")
def _background_threads_stopped(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Live-clock serving (tests through the live server) starts per-process threads with
    their own connections: the decision writer and the spend refresher. End them before
    the test database is dropped (torn down before django_db_setup, which this requests)."""
    yield
    from delivery import decisionlog, state

    decisionlog.writer_stop()
    state.refresher_stop()


@pytest.fixture(autouse=True)
def _clear_key_cache() -> Iterator[None]:
    access_selectors.clear_cache()
    yield
    access_selectors.clear_cache()


@pytest.fixture
def make_key(db: None) -> Callable[..., str]:
    def make(*scopes: str, advertiser_id: int | None = None) -> str:
        return api_key_create(scopes=list(scopes), name="test", advertiser_id=advertiser_id).key

    return make


@pytest.fixture
def http(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def behaviour_event(
    type_: str = "product_view",
    *,
    user_id: str = "u-1",
    properties: dict[str, Any] | None = None,
    timestamp: datetime | None = None,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    defaults = {
        "page_view": {"url": "https://shop.example/"},
        "product_view": {"product_id": "sku-1"},
        "search": {"query": "running shoes"},
        "add_to_cart": {"product_id": "sku-1", "quantity": 1, "price": "19.99"},
        "remove_from_cart": {"product_id": "sku-1"},
        "purchase": {
            "order_id": "o-1",
            "items": [{"product_id": "sku-1", "quantity": 2, "price": "19.99"}],
            "revenue": "39.98",
            "currency": "EUR",
        },
        "ad_impression": {"token": "t"},
        "ad_click": {"token": "t"},
    }
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "type": type_,
        "user_id": user_id,
        "timestamp": (timestamp or datetime.now(UTC)).isoformat(),
        "properties": defaults[type_] if properties is None else properties,
        **extra,
    }
