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

        with connection.cursor() as cur:
            if users:
                keys = sorted(users)  # fixed lock order: no deadlocks between runners
                cols = [[users[k][c] for k in keys] for c in _USER_COLUMNS]
                cur.execute(
                    """
                    INSERT INTO behaviour_user_activity AS t
                        (user_key, events, page_views, product_views, searches, cart_adds, purchases,
                         revenue, first_seen, last_seen)
                    SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                                         %s::bigint[], %s::bigint[], %s::numeric[], %s::timestamptz[],
                                         %s::timestamptz[])
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
                    [
                        keys,
                        *cols,
                        [users[k]["revenue"] for k in keys],
                        [users[k]["first"] for k in keys],
                        [users[k]["last"] for k in keys],
                    ],
                )
            if products:
                keys = sorted(products)
                cols = [[products[k][c] for k in keys] for c in _PRODUCT_COLUMNS]
                cur.execute(
                    """
                    INSERT INTO behaviour_product_activity AS t
                        (product_id, views, cart_adds, purchases, units_sold, revenue, last_event_at)
                    SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                                         %s::numeric[], %s::timestamptz[])
                    ON CONFLICT (product_id) DO UPDATE SET
                        views = t.views + EXCLUDED.views,
                        cart_adds = t.cart_adds + EXCLUDED.cart_adds,
                        purchases = t.purchases + EXCLUDED.purchases,
                        units_sold = t.units_sold + EXCLUDED.units_sold,
                        revenue = t.revenue + EXCLUDED.revenue,
                        last_event_at = GREATEST(t.last_event_at, EXCLUDED.last_event_at)
                    """,
                    [keys, *cols, [products[k]["revenue"] for k in keys], [products[k]["last"] for k in keys]],
                )

    def forget_user(self, user_key: str) -> None:
        UserActivity.objects.filter(user_key=user_key).delete()

    def reset(self) -> None:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE behaviour_user_activity, behaviour_product_activity")
