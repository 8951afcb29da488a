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

# the fallback poll: NOTIFY wakes the consumer for every appended type a projection reads,
# so the poll only bounds the lag of a lost notification and moves the checkpoints past
# unannounced types (/rank's decisions). Each poll is a transaction per projection: at
# 0.5 s, 9 projections cost 0.045 of a core idle, plus Postgres's share
POLL_SECONDS = 2.0


def _listen_connection() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return conn


def run_forever(*, poll_seconds: float = POLL_SECONDS, stop_after: float | None = None) -> None:
    """Run each projection when a notification names one of its event types (the payload
    `append_events` sends), when its last batch applied something (more may be waiting),
    and at least every `poll_seconds` (the fallback for anything not announced). /rank's
    decisions, which no projection reads, are not announced at all (`append_events`
    notifies only for types some projection reads); the poll moves checkpoints past them."""
    running = True

    def _stop(signum: int, frame: Any) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    registry = projections.registry()
    listener = _listen_connection()
    started = time.monotonic()
    last_run = dict.fromkeys(registry, 0.0)
    due = set(registry)
    logger.info("projection consumer started: %s", ", ".join(registry))
    try:
        while running and (stop_after is None or time.monotonic() - started < stop_after):
            for name, projection in registry.items():
                if name not in due:
                    continue
                try:
                    applied = projections.run_batch(projection)
                except Exception:
                    logger.exception("projection %s failed; will retry", name)
                    close_old_connections()
                    time.sleep(1.0)
                    applied = 1
                last_run[name] = time.monotonic()
                if applied == 0:
                    due.discard(name)
            now = time.monotonic()
            due.update(name for name, t in last_run.items() if now - t >= poll_seconds)
            wait = 0.0 if due else max(0.0, poll_seconds - (now - min(last_run.values())))
            # sleep until something is appended (or the oldest projection's poll is due)
            for note in listener.notifies(timeout=wait, stop_after=1):
                due.update(woken(registry, note.payload))
            if due:
                for note in listener.notifies(timeout=0.0):
                    due.update(woken(registry, note.payload))
    finally:
        listener.close()
        logger.info("projection consumer stopped")


def woken(registry: dict[str, projections.Projection], payload: str) -> set[str]:
    """The projections a notification concerns: those reading one of the named event
    types, those reading every type, and all of them for an unnamed payload."""
    types = set(payload.split(",")) if payload else None
    return {name for name, p in registry.items() if p.reads(types)}
