"""Where retrieval reads its inputs: product interactions and the catalogue from the event
log (as of `until`), MiniLM product text vectors from profiles, approved creatives and
their products from campaigns. Reads only; through other apps' selectors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from adplatform.eventlog import selectors as eventlog
from campaigns import selectors as campaigns
from profiles import selectors as profiles

from .dataset import (
    CATALOG_EVENT_TYPES,
    PRODUCT_EVENT_TYPES,
    CatalogItem,
    Interaction,
    catalog_from_events,
    interactions_from_events,
)


@dataclass(frozen=True)
class LogData:
    interactions: list[Interaction]  # consenting product interactions up to `until`, time-ordered
    catalog: dict[str, CatalogItem]
    opted_out: frozenset[str]  # shoppers whose newest product event says consent: false
    checkpoint: str  # "tx_id:position" of the newest event read ("0:0" for an empty log)
    last_at: datetime | None  # newest interaction time


def opted_out_users(events: Iterable[Any]) -> frozenset[str]:
    newest: dict[str, tuple[datetime, bool]] = {}
    for e in events:
        if e.user_key and e.type in PRODUCT_EVENT_TYPES:
            consent = (e.meta or {}).get("consent") is not False
            prev = newest.get(e.user_key)
            if prev is None or e.occurred_at >= prev[0]:
                newest[e.user_key] = (e.occurred_at, consent)
    return frozenset(u for u, (_t, ok) in newest.items() if not ok)


def log_read(*, until: datetime | None = None) -> LogData:
    """Everything retrieval trains on, read once in commit order (point in time: events
    that occurred after `until` are left out)."""
    behaviour: list[Any] = []
    products: list[Any] = []
    checkpoint = (0, 0)
    for e in eventlog.iter_all(types=PRODUCT_EVENT_TYPES + CATALOG_EVENT_TYPES):
        if until is not None and e.occurred_at > until:
            continue
        checkpoint = (e.tx_id, e.position)
        (products if e.type in CATALOG_EVENT_TYPES else behaviour).append(e)
    interactions = interactions_from_events(behaviour)
    return LogData(
        interactions=interactions,
        catalog=catalog_from_events(products, until=until),
        opted_out=opted_out_users(behaviour),
        checkpoint=f"{checkpoint[0]}:{checkpoint[1]}",
        last_at=max((e.occurred_at for e in behaviour), default=None),
    )


def users_with_events_after(checkpoint: str) -> set[str]:
    """Shoppers with product events committed after `checkpoint` ("tx_id:position")."""
    tx_id, _, position = checkpoint.partition(":")
    tx, pos = int(tx_id or 0), int(position or 0)
    users: set[str] = set()
    while True:
        page = eventlog.events_after(tx_id=tx, position=pos, types=PRODUCT_EVENT_TYPES, limit=5000)
        if not page:
            return users
        users.update(e.user_key for e in page if e.user_key)
        tx, pos = page[-1].tx_id, page[-1].position


def user_events(user_id: str) -> list[Any]:
    return [e for e in eventlog.stream_events(stream=f"user:{user_id}") if e.type in PRODUCT_EVENT_TYPES]


def product_text_vectors() -> dict[str, np.ndarray]:
    return profiles.product_text_vectors()


def approved_creatives() -> dict[str, str]:
    """creative id (as text) → the product it promotes, for approved creatives with one."""
    rows = (
        campaigns.creative_list(advertiser_id=None)
        .filter(status="approved", product_id__isnull=False)
        .values_list("id", "product_id")
    )
    return {str(cid): str(pid) for cid, pid in rows if pid}
