"""Hot-path statements as server-side prepared statements.

Django connects psycopg with prepared statements off and binds parameters on the client
(safe behind transaction-mode poolers), so Postgres parses and plans every statement
again: for /rank's per-request shopper read that planning was about half of the
statement's Postgres CPU (0.2–0.3 ms of ~0.4–0.6 ms, EXPLAIN ANALYZE on the bench world).
`fetch_prepared` runs one statement with server-side binding, prepared once per
connection (psycopg keeps the name), on Django's connection and transaction.
DATABASE_PREPARED_STATEMENTS=false (e.g. behind an old PgBouncer in transaction mode)
keeps server-side binding without preparing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from psycopg.pq import Format

TIMESTAMPTZ_OID = 1184
# psycopg's C timestamptz loader, for `loaders=`: Django's own (a Python subclass that
# re-applies the time zone) costs ~4× as much per row; the session time zone is UTC either way
C_TIMESTAMPTZ = {TIMESTAMPTZ_OID: psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)}


def fetch_prepared(
    sql: str, params: Sequence[Any] | Mapping[str, Any], *, loaders: Mapping[int, Any] | None = None
) -> list[tuple[Any, ...]]:
    """All rows of `sql` (psycopg placeholders) run as a prepared statement on Django's
    connection. `loaders`: {type oid: loader class} for this cursor only."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        for oid, loader in (loaders or {}).items():
            cur.adapters.register_loader(oid, loader)
        cur.execute(sql, params, prepare=bool(settings.DATABASE_PREPARED_STATEMENTS))
        return cur.fetchall()
