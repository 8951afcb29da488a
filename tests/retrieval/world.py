"""A planted marketplace world as retrieval inputs: the generated wire events through the
real behaviour validator (the NewEvents `POST /events` would store), then the same
interaction extraction the event-log path uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from behaviour.events import validate_behaviour_event
from marketplace.world import World, generate_history
from ranking.retrieval.dataset import CatalogItem, Interaction, interactions_from_events


def world_interactions(world: World) -> list[Interaction]:
    now = datetime.now(UTC) + timedelta(days=3650)  # generated history may lie in the "future"
    stored = []
    for day in generate_history(world):
        for raw in day.events:
            out = validate_behaviour_event(raw, now=now, source="test", max_future=timedelta(minutes=5))
            assert out.event is not None, out.errors
            stored.append(out.event)
    return interactions_from_events(stored)


def world_catalog(world: World) -> dict[str, CatalogItem]:
    return {p.product_id: CatalogItem(p.product_id, p.category_path, p.brand, float(p.price)) for p in world.products}
