"""Event type registry: every stored event type, its current schema version and the
upcasters that lift older stored versions to it (STYLE §5). Apps register their types
in their own `events.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class EventType:
    name: str
    version: int = 1
    # upcasters[v] turns a version-v payload into a version-(v+1) payload.
    upcasters: dict[int, Upcaster] = field(default_factory=dict)
    # personal: the payload can hold personal data; on erasure only `erasure_keeps` keys
    # survive. Every event of an erased shopper also loses its user_key and session.
    personal: bool = False
    erasure_keeps: frozenset[str] = frozenset()

    def redact(self, data: dict[str, Any]) -> dict[str, Any]:
        if not self.personal:
            return data
        return {k: v for k, v in data.items() if k in self.erasure_keeps}

    def upcast(self, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        for v in range(from_version, self.version):
            data = self.upcasters[v](data)
        return data


_REGISTRY: dict[str, EventType] = {}


def register(event_type: EventType) -> EventType:
    existing = _REGISTRY.get(event_type.name)
    if existing is not None and existing != event_type:
        raise ValueError(f"event type {event_type.name} registered twice with different definitions")
    _REGISTRY[event_type.name] = event_type
    return event_type


def get(name: str) -> EventType | None:
    return _REGISTRY.get(name)


def all_types() -> dict[str, EventType]:
    return dict(_REGISTRY)
