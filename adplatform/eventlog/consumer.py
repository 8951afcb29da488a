"""The projection consumer loop (`manage.py run_projections`): applies new events to
every projection as they commit, woken by NOTIFY from `append_events`, polling as a
fallback so a lost notification costs at most `poll_seconds` of lag."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import psycopg
from django.db import close_old_connections, connection

from . import projections
from .services import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)


def _listen_connection() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return conn


def run_forever(*, poll_seconds: float = 0.5, stop_after: float | None = None) -> None:
    running = True

    def _stop(signum: int, frame: Any) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    registry = projections.registry()
    listener = _listen_connection()
    started = time.monotonic()
    logger.info("projection consumer started: %s", ", ".join(registry))
    try:
        while running and (stop_after is None or time.monotonic() - started < stop_after):
            applied = 0
            for projection in registry.values():
                try:
                    applied += projections.run_batch(projection)
                except Exception:
                    logger.exception("projection %s failed; will retry", projection.name)
                    close_old_connections()
                    time.sleep(1.0)
            if applied == 0:
                # Sleep until something is appended (or the poll interval passes).
                for _ in listener.notifies(timeout=poll_seconds, stop_after=1):
                    pass
    finally:
        listener.close()
        logger.info("projection consumer stopped")
