"""Reads of the event log. Readers see events in commit order: ordered by (tx_id,
position) and only from transactions older than every transaction still running, so a
reader never skips an event that commits late (docs/adr/0002)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from django.db import connection

from adplatform.db.prepared import C_TIMESTAMPTZ

from . import events as event_types


@dataclass(frozen=True)
class StoredEvent:
    position: int
    tx_id: int
    event_id: uuid.UUID
    stream: str
    stream_version: int | None
    type: str
    occurred_at: datetime
    recorded_at: datetime
    user_key: str | None
    data: dict[str, Any]
    meta: dict[str, Any]


_COLUMNS = (
    "position, tx_id::text::bigint, event_id, stream, stream_version, type, schema_version, "
    "occurred_at, recorded_at, user_key, data::text, meta::text"
)


def _log_cursor() -> psycopg.Cursor[Any]:
    """A cursor on Django's connection that parses timestamptz with psycopg's C loader:
    Django's own loader (a Python subclass that re-applies the time zone) costs 4× as much
    per row, and projections read every event. The session time zone is UTC either way."""
    connection.ensure_connection()
    cur = connection.connection.cursor()
    for oid, loader in C_TIMESTAMPTZ.items():
        cur.adapters.register_loader(oid, loader)
    return cur


def _row_to_event(row: tuple[Any, ...]) -> StoredEvent:
    data = orjson.loads(row[10])
    et = event_types.get(row[5])
    if et is not None and row[6] < et.version:
        data = et.upcast(data, row[6])
    return StoredEvent(
        position=row[0],
        tx_id=row[1],
        event_id=row[2],
        stream=row[3],
        stream_version=row[4],
        type=row[5],
        occurred_at=row[7],
        recorded_at=row[8],
        user_key=row[9],
        data=data,
        meta=orjson.loads(row[11]),
    )


def events_after(
    *,
    tx_id: int,
    position: int,
    types: Iterable[str] | None = None,
    limit: int = 1000,
    stream_has: str | None = None,
) -> list[StoredEvent]:
    """Committed events after the checkpoint (tx_id, position), in commit order; with
    `stream_has`, only events whose stream also holds an event of that type."""
    where = ["(tx_id, position) > (%s::text::xid8, %s)", "tx_id < pg_snapshot_xmin(pg_current_snapshot())"]
    params: list[Any] = [str(tx_id), position]
    if types is not None:
        where.append("type = ANY(%s)")
        params.append(list(types))
    if stream_has is not None:
        where.append("EXISTS (SELECT 1 FROM eventlog_event o WHERE o.stream = e.stream AND o.type = %s)")
        params.append(stream_has)
    params.append(limit)
    sql = f"SELECT {_COLUMNS} FROM eventlog_event e WHERE {' AND '.join(where)} ORDER BY e.tx_id, e.position LIMIT %s"
    with _log_cursor() as cur:
        cur.execute(sql, params)
        return [_row_to_event(r) for r in cur.fetchall()]


def stream_events(*, stream: str, until: datetime | None = None) -> list[StoredEvent]:
    """One stream's events in position order, optionally only those recorded by `until`."""
    sql = f"SELECT {_COLUMNS} FROM eventlog_event WHERE stream = %s"
    params: list[Any] = [stream]
    if until is not None:
        sql += " AND recorded_at <= %s"
        params.append(until)
    sql += " ORDER BY position"
    with _log_cursor() as cur:
        cur.execute(sql, params)
        return [_row_to_event(r) for r in cur.fetchall()]


def iter_all(
    *, types: Iterable[str] | None = None, batch: int = 5000, stream_has: str | None = None
) -> Iterator[StoredEvent]:
    """Every committed event (of `types`; in streams holding a `stream_has` event), in
    commit order, read in pages of `batch`."""
    tx_id, position = 0, 0
    while True:
        page = events_after(tx_id=tx_id, position=position, types=types, limit=batch, stream_has=stream_has)
        if not page:
            return
        yield from page
        tx_id, position = page[-1].tx_id, page[-1].position


def head() -> tuple[int, int]:
    """(tx_id, position) of the newest readable event, (0, 0) for an empty log."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT e.tx_id::text::bigint, e.position FROM eventlog_event e "
            "WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY e.tx_id DESC, e.position DESC LIMIT 1"
        )
        row = cur.fetchone()
    return (row[0], row[1]) if row else (0, 0)


def count_events(*, types: Iterable[str] | None = None) -> int:
    with connection.cursor() as cur:
        if types is None:
            cur.execute("SELECT count(*) FROM eventlog_event")
        else:
            cur.execute("SELECT count(*) FROM eventlog_event WHERE type = ANY(%s)", [list(types)])
        return int(cur.fetchone()[0])
