"""Activity projection: per-shopper and per-product counters from behaviour events.

Counters are sums and extrema, so late (out-of-order) events land correctly whatever
order they arrive in. Events with consent=false count for products (aggregate, not
personal) but not for the shopper's own activity."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection

from adplatform.eventlog.projections import Projection, register_projection
from adplatform.eventlog.selectors import StoredEvent
from adplatform.eventlog.services import to_json

from .events import BEHAVIOUR_EVENT_TYPES
from .models import UserActivity

_USER_COUNTER = {
    "PageViewed": "page_views",
    "ProductViewed": "product_views",
    "SearchPerformed": "searches",
    "CartItemAdded": "cart_adds",
    "OrderPlaced": "purchases",
}
_USER_COLUMNS = ("events", "page_views", "product_views", "searches", "cart_adds", "purchases")
_PRODUCT_COLUMNS = ("views", "cart_adds", "purchases", "units_sold")


@register_projection
class ActivityProjection(Projection):
    name = "activity"
    event_types = BEHAVIOUR_EVENT_TYPES

    def apply(self, events: list[StoredEvent]) -> None:
        users: dict[str, dict[str, Any]] = {}
        products: dict[str, dict[str, Any]] = {}

        def product(pid: str, at: Any) -> dict[str, Any]:
            row = products.get(pid)
            if row is None:
                row = products[pid] = {**dict.fromkeys(_PRODUCT_COLUMNS, 0), "revenue": Decimal(0), "last": at}
            row["last"] = max(row["last"], at)
            return row

        for ev in events:
            d = ev.data
            if ev.type == "ProductViewed":
                product(str(d["product_id"]), ev.occurred_at)["views"] += 1
            elif ev.type == "CartItemAdded":
                product(str(d["product_id"]), ev.occurred_at)["cart_adds"] += 1
            elif ev.type == "OrderPlaced":
                for item in d["items"]:
                    row = product(str(item["product_id"]), ev.occurred_at)
                    row["purchases"] += 1
                    row["units_sold"] += int(item["quantity"])
                    row["revenue"] += Decimal(item["price"]) * int(item["quantity"])
            if ev.user_key is None or ev.meta.get("consent") is False:
                continue
            u = users.get(ev.user_key)
            if u is None:
                u = users[ev.user_key] = {
                    **dict.fromkeys(_USER_COLUMNS, 0),
                    "revenue": Decimal(0),
                    "first": ev.occurred_at,
                    "last": ev.occurred_at,
                }
            u["events"] += 1
            column = _USER_COUNTER.get(ev.type)
            if column:
                u[column] += 1
            if ev.type == "OrderPlaced":
                u["revenue"] += Decimal(d["revenue"])
            u["first"] = min(u["first"], ev.occurred_at)
            u["last"] = max(u["last"], ev.occurred_at)

        # One JSON document per table: Postgres parses it in C (jsonb_to_recordset), far
        # cheaper than psycopg quoting ten text arrays element by element.
        with connection.cursor() as cur:
            if users:
                rows = [{"k": k, **users[k]} for k in sorted(users)]  # fixed lock order: no deadlocks
                cur.execute(
                    """
                    INSERT INTO behaviour_user_activity AS t
                        (user_key, events, page_views, product_views, searches, cart_adds, purchases,
                         revenue, first_seen, last_seen)
                    SELECT k, events, page_views, product_views, searches, cart_adds, purchases,
                           revenue, first, last
                    FROM jsonb_to_recordset(%s::jsonb) AS x(k text, events bigint, page_views bigint,
                         product_views bigint, searches bigint, cart_adds bigint, purchases bigint,
                         revenue numeric, first timestamptz, last timestamptz)
                    ON CONFLICT (user_key) DO UPDATE SET
                        events = t.events + EXCLUDED.events,
                        page_views = t.page_views + EXCLUDED.page_views,
                        product_views = t.product_views + EXCLUDED.product_views,
                        searches = t.searches + EXCLUDED.searches,
                        cart_adds = t.cart_adds + EXCLUDED.cart_adds,
                        purchases = t.purchases + EXCLUDED.purchases,
                        revenue = t.revenue + EXCLUDED.revenue,
                        first_seen = LEAST(t.first_seen, EXCLUDED.first_seen),
                        last_seen = GREATEST(t.last_seen, EXCLUDED.last_seen)
                    """,
                    [to_json(rows)],
                )
            if products:
                rows = [{"k": k, **products[k]} for k in sorted(products)]
                cur.execute(
                    """
                    INSERT INTO behaviour_product_activity AS t
                        (product_id, views, cart_adds, purchases, units_sold, revenue, last_event_at)
                    SELECT k, views, cart_adds, purchases, units_sold, revenue, last
                    FROM jsonb_to_recordset(%s::jsonb) AS x(k text, views bigint, cart_adds bigint,
                         purchases bigint, units_sold bigint, revenue numeric, last timestamptz)
                    ON CONFLICT (product_id) DO UPDATE SET
                        views = t.views + EXCLUDED.views,
                        cart_adds = t.cart_adds + EXCLUDED.cart_adds,
                        purchases = t.purchases + EXCLUDED.purchases,
                        units_sold = t.units_sold + EXCLUDED.units_sold,
                        revenue = t.revenue + EXCLUDED.revenue,
                        last_event_at = GREATEST(t.last_event_at, EXCLUDED.last_event_at)
                    """,
                    [to_json(rows)],
                )

    def forget_user(self, user_key: str) -> None:
        UserActivity.objects.filter(user_key=user_key).delete()

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE behaviour_user_activity, behaviour_product_activity")
