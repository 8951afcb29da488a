"""The `profiles` projection: one row per shopper, folded from behaviour events within
seconds of ingestion (run by the projection consumer).

A batch is applied with one read of the touched rows, the pure fold of profiles.folding,
and one upsert. The product facts (category path, brand, price) are read from the catalog
once per batch; a product unknown to the catalog still counts for recency and cart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

from adplatform.eventlog.projections import Projection, register_projection
from adplatform.eventlog.selectors import StoredEvent
from catalog import selectors as catalog

from .folding import PROFILE_EVENT_TYPES, ProductFacts, decay_rate, empty_state, epoch, fold, from_epoch
from .models import Embedding, Profile, SegmentMembership
from .vectors import USER_KINDS

PROFILE_COLUMNS = (
    "user_key, consent, consent_at, decay_ref, first_event_at, last_event_at, frequency, orders, monetary, "
    "last_order_at, categories::text, brands::text, products::text, price_sum, price_weight, devices::text, "
    "recent_products::text, recent_queries::text, cart::text, last_position, updated_at"
)


def lam() -> float:
    return decay_rate(settings.PROFILES_HALF_LIFE_DAYS)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else epoch(value)


def row_to_state(row: tuple[Any, ...]) -> dict[str, Any]:
    """A `PROFILE_COLUMNS` row → fold state."""
    state = empty_state()
    state.update(
        consent=row[1],
        consent_at=_ts(row[2]),
        ref=_ts(row[3]),
        first=_ts(row[4]),
        last=_ts(row[5]),
        frequency=row[6],
        orders=row[7],
        monetary=Decimal(row[8]),
        last_order=_ts(row[9]),
        categories=orjson.loads(row[10]),
        brands=orjson.loads(row[11]),
        products=orjson.loads(row[12]),
        price_sum=row[13],
        price_weight=row[14],
        devices=orjson.loads(row[15]),
        recent_products=orjson.loads(row[16]),
        recent_queries=orjson.loads(row[17]),
        cart=orjson.loads(row[18]),
        last_position=row[19],
    )
    return state


def read_states(user_keys: Iterable[str]) -> dict[str, tuple[dict[str, Any], datetime]]:
    """user_key → (fold state, updated_at) for the shoppers that have a profile row."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT {PROFILE_COLUMNS} FROM profiles_profile WHERE user_key = ANY(%s)", [list(user_keys)])
        return {row[0]: (row_to_state(row), row[20]) for row in cur.fetchall()}


def product_facts(product_ids: Iterable[str]) -> dict[str, ProductFacts]:
    return {
        pid: ProductFacts(category_path=p.category_path, brand=p.brand, price=float(p.price))
        for pid, p in catalog.products_by_id(product_ids).items()
    }


def _product_ids(events: Iterable[StoredEvent]) -> set[str]:
    ids: set[str] = set()
    for ev in events:
        if ev.type in ("ProductViewed", "CartItemAdded") and "product_id" in ev.data:
            ids.add(str(ev.data["product_id"]))
        elif ev.type == "OrderPlaced":
            ids.update(str(i["product_id"]) for i in ev.data.get("items") or () if "product_id" in i)
    return ids


def fold_events(
    events: list[StoredEvent], states: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Fold events (of any shoppers) onto existing states; returns the touched states."""
    by_user: dict[str, list[StoredEvent]] = defaultdict(list)
    for ev in events:
        if ev.user_key is not None and ev.type in PROFILE_EVENT_TYPES:
            by_user[ev.user_key].append(ev)
    facts = product_facts(_product_ids(events))
    rate = lam()
    out = {}
    for user_key, evs in by_user.items():
        state = (states or {}).get(user_key) or empty_state()
        out[user_key] = fold(state, evs, facts, lam=rate)
    return out


_UPSERT = """
INSERT INTO profiles_profile AS t
    (user_key, consent, consent_at, decay_ref, first_event_at, last_event_at, frequency, orders, monetary,
     last_order_at, categories, brands, products, price_sum, price_weight, devices, recent_products,
     recent_queries, cart, last_position, updated_at)
SELECT u.*, clock_timestamp() FROM unnest(
    %s::text[], %s::boolean[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[],
    %s::bigint[], %s::bigint[], %s::numeric[], %s::timestamptz[], %s::jsonb[], %s::jsonb[], %s::jsonb[],
    %s::float8[], %s::float8[], %s::jsonb[], %s::jsonb[], %s::jsonb[], %s::jsonb[], %s::bigint[]) AS u
ON CONFLICT (user_key) DO UPDATE SET
    consent = EXCLUDED.consent, consent_at = EXCLUDED.consent_at, decay_ref = EXCLUDED.decay_ref,
    first_event_at = EXCLUDED.first_event_at, last_event_at = EXCLUDED.last_event_at,
    frequency = EXCLUDED.frequency, orders = EXCLUDED.orders, monetary = EXCLUDED.monetary,
    last_order_at = EXCLUDED.last_order_at, categories = EXCLUDED.categories, brands = EXCLUDED.brands,
    products = EXCLUDED.products, price_sum = EXCLUDED.price_sum, price_weight = EXCLUDED.price_weight,
    devices = EXCLUDED.devices, recent_products = EXCLUDED.recent_products,
    recent_queries = EXCLUDED.recent_queries, cart = EXCLUDED.cart, last_position = EXCLUDED.last_position,
    updated_at = EXCLUDED.updated_at
"""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def write_states(states: Mapping[str, dict[str, Any]]) -> None:
    keys = sorted(states)  # fixed lock order
    s = [states[k] for k in keys]
    columns: list[list[Any]] = [
        keys,
        [x["consent"] for x in s],
        [from_epoch(x["consent_at"]) for x in s],
        [from_epoch(x["ref"]) for x in s],
        [from_epoch(x["first"]) for x in s],
        [from_epoch(x["last"]) for x in s],
        [x["frequency"] for x in s],
        [x["orders"] for x in s],
        [x["monetary"] for x in s],
        [from_epoch(x["last_order"]) for x in s],
        *([_dumps(x[f]) for x in s] for f in ("categories", "brands", "products")),
        [x["price_sum"] for x in s],
        [x["price_weight"] for x in s],
        *([_dumps(x[f]) for x in s] for f in ("devices", "recent_products", "recent_queries", "cart")),
        [x["last_position"] for x in s],
    ]
    with connection.cursor() as cur:
        cur.execute(_UPSERT, columns)


@register_projection
class ProfileProjection(Projection):
    name = "profiles"
    event_types = PROFILE_EVENT_TYPES

    def apply(self, events: list[StoredEvent]) -> None:
        keys = {ev.user_key for ev in events if ev.user_key is not None}
        if not keys:
            return
        existing = {k: state for k, (state, _) in read_states(keys).items()}
        write_states(fold_events(events, existing))

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE profiles_profile")

    def forget_user(self, user_key: str) -> None:
        """The profile row, the shopper's user embeddings (every kind and version) and
        segment membership."""
        Profile.objects.filter(user_key=user_key).delete()
        Embedding.objects.filter(kind__in=USER_KINDS, key=user_key).delete()
        SegmentMembership.objects.filter(user_key=user_key).delete()


def product_text(data: Mapping[str, Any]) -> str:
    """What a product's text embedding encodes: title, brand and category path."""
    parts = [str(data.get("title") or "").strip(), str(data.get("brand") or "").strip()]
    path = " > ".join(str(c) for c in data.get("category_path") or ())
    return " · ".join(p for p in (*parts, path) if p)


@register_projection
class ProductDocProjection(Projection):
    """Product texts to embed plus in-stock/category facts for filtered NN queries."""

    name = "product_docs"
    event_types = frozenset({"ProductUpserted"})

    def apply(self, events: list[StoredEvent]) -> None:
        latest: dict[str, StoredEvent] = {}
        for ev in events:
            latest[str(ev.data["product_id"])] = ev  # commit order: the last one wins
        keys = sorted(latest)
        texts = [product_text(latest[k].data) for k in keys]
        with connection.cursor() as cur:
            cur.execute(
                """
                INSERT INTO profiles_product_doc AS t (product_id, text, text_hash, in_stock, category_path, updated_at)
                SELECT u.product_id, u.text, md5(u.text), u.in_stock,
                       ARRAY(SELECT jsonb_array_elements_text(u.path))::varchar[], u.at
                FROM unnest(%s::text[], %s::text[], %s::boolean[], %s::jsonb[], %s::timestamptz[])
                     AS u(product_id, text, in_stock, path, at)
                ON CONFLICT (product_id) DO UPDATE SET text = EXCLUDED.text, text_hash = EXCLUDED.text_hash,
                    in_stock = EXCLUDED.in_stock, category_path = EXCLUDED.category_path,
                    updated_at = EXCLUDED.updated_at
                """,
                [
                    keys,
                    texts,
                    [bool(latest[k].data.get("in_stock", True)) for k in keys],
                    [_dumps(list(latest[k].data.get("category_path") or [])) for k in keys],
                    [latest[k].occurred_at for k in keys],
                ],
            )

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE profiles_product_doc")
