"""The one way to write a fact: `append_events`. Runs inside the caller's transaction so
that events, inline read-model updates and checkpoints commit together (STYLE §2–3)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.db import IntegrityError, connection

from . import events as event_types

NOTIFY_CHANNEL = "eventlog"
ERROR_UNKNOWN_EVENT_TYPE = "Unknown event type {type!r}: register it in its app's events.py."


class StreamVersionConflictError(Exception):
    """Another writer appended to the same stream version first (optimistic concurrency)."""


@dataclass(frozen=True)
class NewEvent:
    type: str
    stream: str
    data: dict[str, Any]
    occurred_at: datetime
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    stream_version: int | None = None
    user_key: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AppendResult:
    stored: frozenset[uuid.UUID]  # ids written by this call; the others were duplicates

    @property
    def count(self) -> int:
        return len(self.stored)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def to_json(obj: Any) -> str:
    return orjson.dumps(obj, default=_default).decode()


_INSERT_SQL = """
INSERT INTO eventlog_event
    (event_id, stream, stream_version, type, schema_version, occurred_at, recorded_at, user_key, data, meta)
SELECT e.event_id, e.stream, e.stream_version, e.type, e.schema_version, e.occurred_at, now(),
       e.user_key, e.data::jsonb, e.meta::jsonb
FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[], %s::smallint[], %s::timestamptz[],
            %s::text[], %s::text[], %s::text[])
     AS e(event_id, stream, stream_version, type, schema_version, occurred_at, user_key, data, meta)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def append_events(events: Sequence[NewEvent]) -> AppendResult:
    """Append events; an `event_id` already in the log is skipped (idempotency), also when
    the same id arrives concurrently: the unique index makes the second writer wait for
    the first and then skip.

    Must be called inside `transaction.atomic()`; raises StreamVersionConflictError when a
    `stream_version` is taken.
    """
    if not events:
        return AppendResult(frozenset())
    versions = []
    for ev in events:
        et = event_types.get(ev.type)
        if et is None:
            raise ValueError(ERROR_UNKNOWN_EVENT_TYPE.format(type=ev.type))
        versions.append(et.version)
    params = (
        [ev.event_id for ev in events],
        [ev.stream for ev in events],
        [ev.stream_version for ev in events],
        [ev.type for ev in events],
        versions,
        [ev.occurred_at for ev in events],
        [ev.user_key for ev in events],
        [to_json(ev.data) for ev in events],
        [to_json(ev.meta) for ev in events],
    )
    try:
        with connection.cursor() as cur:
            cur.execute(_INSERT_SQL, params)
            stored = frozenset(row[0] for row in cur.fetchall())
            if stored:
                cur.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    except IntegrityError as exc:
        if "eventlog_stream_version_uniq" in str(exc):
            raise StreamVersionConflictError(str(exc)) from exc
        raise
    return AppendResult(stored)
