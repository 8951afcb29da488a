"""Projection framework: read models built from the log.

A projection applies batches of events and records its checkpoint in the same
transaction as its writes (STYLE §4), so a crash never double-applies or skips. Runs
are mutually exclusive per projection through a transaction-scoped advisory lock;
`rebuild` resets the read model and replays from position zero.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from . import selectors
from .models import ProjectionCheckpoint
from .selectors import StoredEvent

logger = logging.getLogger(__name__)


class Projection(ABC):
    name: ClassVar[str]
    # None: every event type.
    event_types: ClassVar[frozenset[str] | None] = None
    # A read model commits its rows and its checkpoint together, so losing the last
    # batches in a server crash only rewinds it consistently: no need to wait for the WAL
    # flush (ADR 0003). A projection whose apply() appends events or moves money sets True.
    durable_commit: ClassVar[bool] = False

    @classmethod
    def reads(cls, types: set[str] | None) -> bool:
        """Whether it reads one of `types` (None: unnamed, any type)."""
        return types is None or cls.event_types is None or not types.isdisjoint(cls.event_types)

    @abstractmethod
    def apply(self, events: list[StoredEvent]) -> None:
        """Apply a batch inside the runner's transaction. Must not check business rules."""

    @abstractmethod
    def reset(self) -> None:
        """Delete everything this projection wrote."""

    def forget_user(self, user_key: str) -> None:  # noqa: B027 - optional hook
        """Erasure: delete every row about this shopper. A projection that reads events of a
        `personal` type or keeps per-user state must override this (a test enforces it)."""


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    last_position: int
    events_applied: int
    lag_events: int
    lag_seconds: float | None
    updated_at: datetime | None


_REGISTERED: dict[str, type[Projection]] = {}


def register_projection(cls: type[Projection]) -> type[Projection]:
    """Class decorator: every app declares its projections in its own projections.py."""
    _REGISTERED[cls.name] = cls
    return cls


_discovered: list[bool] = []


def _discover() -> None:
    """Import each installed app's projections.py, once per process (a missing module is
    searched for on disk again on every import attempt)."""
    if not _discovered:
        autodiscover_modules("projections")
        _discovered.append(True)


def read_by_any(types: Iterable[str]) -> bool:
    """Whether a registered projection reads one of `types`."""
    _discover()
    wanted = set(types)
    return any(cls.reads(wanted) for cls in _REGISTERED.values())


def registry() -> dict[str, Projection]:
    """Every registered projection, by name (each installed app's projections.py is imported)."""
    _discover()
    return {name: cls() for name, cls in sorted(_REGISTERED.items())}


def get_projection(name: str) -> Projection:
    projections = registry()
    try:
        return projections[name]
    except KeyError:
        raise KeyError(f"unknown projection {name!r}; known: {', '.join(projections)}") from None


def _try_lock(name: str, wait: bool) -> bool:
    with connection.cursor() as cur:
        if wait:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('projection:' || %s))", [name])
            return True
        cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('projection:' || %s))", [name])
        return bool(cur.fetchone()[0])


def run_batch(projection: Projection, *, limit: int | None = None) -> int:
    """Apply the next batch; returns how many events were applied (0: caught up or busy)."""
    limit = limit or settings.PROJECTION_BATCH_SIZE
    with transaction.atomic():
        if not _try_lock(projection.name, wait=False):
            return 0
        if not projection.durable_commit:
            with connection.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
        cp, _ = ProjectionCheckpoint.objects.get_or_create(name=projection.name)
        checkpoint = (cp.last_tx_id, cp.last_position)
        # A projection that reads only some types moves its checkpoint past the events it
        # does not read, or every batch would re-scan them (ADR 0002). The horizon is read
        # before the batch: whatever it covers is visible to the batch's query too.
        horizon = selectors.head() if projection.event_types is not None else checkpoint
        events = selectors.events_after(
            tx_id=cp.last_tx_id, position=cp.last_position, types=projection.event_types, limit=limit
        )
        if events:
            projection.apply(events)
            last = events[-1]
            new_checkpoint = (last.tx_id, last.position)
            if len(events) < limit:
                new_checkpoint = max(new_checkpoint, horizon)
        elif horizon > checkpoint:
            new_checkpoint = horizon
        else:
            return 0
        ProjectionCheckpoint.objects.filter(name=projection.name).update(
            last_tx_id=new_checkpoint[0],
            last_position=new_checkpoint[1],
            events_applied=cp.events_applied + len(events),
            **({"last_event_recorded_at": events[-1].recorded_at} if events else {}),
            updated_at=timezone.now(),
        )
        return len(events)


def catch_up(projection: Projection, *, max_seconds: float | None = None) -> int:
    total, started = 0, time.monotonic()
    while True:
        n = run_batch(projection)
        total += n
        if n == 0 or (max_seconds is not None and time.monotonic() - started > max_seconds):
            return total


def catch_up_all(*, max_seconds: float | None = None) -> dict[str, int]:
    return {name: catch_up(p, max_seconds=max_seconds) for name, p in registry().items()}


def rebuild(projection: Projection) -> int:
    """Reset and replay from zero. The reset and the checkpoint rewind commit together,
    so a concurrent runner sees either the old state or the empty one."""
    with transaction.atomic():
        _try_lock(projection.name, wait=True)
        projection.reset()
        ProjectionCheckpoint.objects.update_or_create(
            name=projection.name,
            defaults={"last_tx_id": 0, "last_position": 0, "events_applied": 0, "last_event_recorded_at": None},
        )
    return catch_up(projection)


def status(projection: Projection) -> ProjectionStatus:
    cp = ProjectionCheckpoint.objects.filter(name=projection.name).first()
    tx_id, position = (cp.last_tx_id, cp.last_position) if cp else (0, 0)
    with connection.cursor() as cur:
        sql = "SELECT count(*), min(recorded_at) FROM eventlog_event WHERE (tx_id, position) > (%s::text::xid8, %s)"
        params: list[Any] = [str(tx_id), position]
        if projection.event_types is not None:
            sql += " AND type = ANY(%s)"
            params.append(list(projection.event_types))
        cur.execute(sql, params)
        lag_events, oldest_unapplied = cur.fetchone()
    lag_seconds = (timezone.now() - oldest_unapplied).total_seconds() if oldest_unapplied else 0.0
    return ProjectionStatus(
        name=projection.name,
        last_position=position,
        events_applied=cp.events_applied if cp else 0,
        lag_events=int(lag_events),
        lag_seconds=lag_seconds,
        updated_at=cp.updated_at if cp else None,
    )
