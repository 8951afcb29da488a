"""Django's PostgreSQL backend with a cheaper connection health check.

CONN_HEALTH_CHECKS makes Django ping a persistent connection (`SELECT 1`) before the first
query of every request: one round trip per /rank decision, ~6 % of a web worker's samples
at 100 req/s (docs/benchmarks/rank.md). A connection that ran a query less than
HEALTH_CHECK_TRUST_SECONDS ago is trusted instead (one that raised a database error is
closed at the end of its request anyway, see `close_if_unusable_or_obsolete`): under load
that is every request, while an idle connection — the case the check exists for: a
database restart or an idle-session timeout while nobody used it — is still pinged."""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base

HEALTH_CHECK_TRUST_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    _used_at = -1e18  # monotonic time of this connection's latest cursor

    def create_cursor(self, name: Any = None) -> Any:
        self._used_at = time.monotonic()
        return super().create_cursor(name)

    def close_if_health_check_failed(self) -> None:
        if self.connection is not None and time.monotonic() - self._used_at < HEALTH_CHECK_TRUST_SECONDS:
            self.health_check_done: bool = True  # what a passed check would set
            return
        super().close_if_health_check_failed()
