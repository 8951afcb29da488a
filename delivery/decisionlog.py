"""The decision log: one AdDecisionMade event per /rank decision (training data for the
next model: what was considered, with which features and scores, what won at which
price). Built here; `decision_record` appends it — on the live clock through this
process's group writer (ADR 0058), on an injected clock at once."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connection, transaction

from adplatform.eventlog.services import NewEvent, append_events
from ranking.events import AD_DECISION_MADE, decision_stream, pack_f4


def decision_event(
    *,
    request_id: str,
    user_id: str,
    session_id: str | None,
    at: datetime,
    placement: str,
    page_type: str,
    context: Mapping[str, Any],
    model_version: str,
    limit: int,
    policy: str,
    mode: str,
    candidates: Mapping[str, Any],
    features_shared: Mapping[str, Any],
    eligibility: Mapping[str, int],
    winners: Sequence[Mapping[str, Any]],
    segment: str | None,
    consent: bool,
    value_weight: float = 0.0,
    click_value: float = 0.0,
) -> NewEvent:
    meta: dict[str, Any] = {"source": "rank"}
    if session_id:
        meta["session_id"] = session_id
    return NewEvent(
        type=AD_DECISION_MADE.name,
        stream=decision_stream(request_id),
        data={
            "request_id": request_id,
            "placement": placement,
            "page_type": page_type,
            "context": dict(context),
            "model_version": model_version,
            "limit": limit,
            "policy": policy,
            "mode": mode,
            "features_shared": dict(features_shared),
            "candidates": dict(candidates),
            "eligibility": dict(eligibility),
            "winners": list(winners),
            "segment": segment,
            "consent": consent,
            "value_weight": value_weight,
            "click_value": click_value,
        },
        occurred_at=at,
        event_id=uuid.UUID(hex=request_id) if len(request_id) == 32 else uuid.uuid4(),
        stream_version=1,
        user_key=user_id,
        meta=meta,
    )


def candidate_log(
    *,
    ineligible: Sequence[tuple[int, str]],
    ids: Sequence[int],
    campaign_ids: Sequence[int],
    advertiser_ids: Sequence[int],
    scores: Mapping[int, tuple[float, float, float, float]],
    values: Mapping[int, float],
    features: Mapping[str, Any],
    sources: Mapping[int, set[str]],
    distance: Mapping[int, float],
    reasons: Sequence[str | None],
) -> dict[str, Any]:
    """AdDecisionMade.candidates (v3 columns, ranking/events.py): the requested creatives
    that were not eligible first (re-ranking mode: id and reason only), then the scored
    ones, with the scorer's feature columns, sources and ANN distance as features."""
    k = len(ineligible)
    none: list[Any] = [None] * k

    def column(values: Any) -> Any:
        """The scored candidates' values behind the ineligible ones' nulls; a float column
        (the scorer's dense features are float32 arrays) packed as float32 (ADR 0063)."""
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            return pack_f4(np.concatenate([np.full(k, np.nan, dtype=np.float32), values]) if k else values)
        return none + list(values) if k else values

    feature_cols = {name: column(col) for name, col in features.items()}
    feature_cols["sources"] = column([sorted(sources[cid]) for cid in ids])
    if distance:
        feature_cols["ann_distance"] = column(np.array([distance.get(cid, np.nan) for cid in ids], dtype=np.float32))
    rows = [scores[cid] for cid in ids]  # (p_click, p_conversion, ecpm, calibration)
    score_cols = {
        "p_click": [r[0] for r in rows],
        "p_conversion": [r[1] for r in rows],
        "ecpm": [r[2] for r in rows],
        "calibration": [r[3] for r in rows],
        "value": [values[cid] for cid in ids],
    }
    return {
        "creative_id": [cid for cid, _ in ineligible] + list(ids),
        "campaign_id": column(campaign_ids),
        "advertiser_id": column(advertiser_ids),
        "eligible": [False] * k + [True] * len(ids),
        "reason": [reason for _, reason in ineligible] + list(reasons),
        # float32 like the features: ~7 significant digits are what the model and the
        # auction's reports need
        "scores": {name: column(np.asarray(col, dtype=np.float32)) for name, col in score_cols.items()},
        "features": feature_cols,
    }


logger = logging.getLogger(__name__)
WRITER_BATCH = 256  # decisions per COPY at most
WRITER_INTERVAL_SECONDS = 0.05  # the writer appends what has queued this often
WRITER_QUEUE = 20_000  # decisions waiting at most; past that /rank appends synchronously
# a plain deque, not a queue.Queue: append/popleft are atomic, and a request hands its
# decision over without taking a lock or waking the writer (a notify per decision cost ~3 %
# of a worker at 200 req/s: the writer woke, took the GIL and went back to sleep per decision)
_pending: deque[NewEvent] = deque()
_stop = threading.Event()
_writer: list[threading.Thread] = []
_writer_lock = threading.Lock()


def decision_record(event: NewEvent, *, wait: bool) -> None:
    """Append a decision. `wait=False` (serving on the live clock, when
    DELIVERY_DECISION_LOG_GROUPED): hand it to this process's writer thread, which appends
    what has queued up every WRITER_INTERVAL_SECONDS in one transaction (one COPY, one
    commit for many decisions instead of five round trips each on the request path); a
    full queue falls back to waiting."""
    if not wait and settings.DELIVERY_DECISION_LOG_GROUPED:
        _ensure_writer()
        if len(_pending) < WRITER_QUEUE:
            _pending.append(event)
            return
        logger.warning("decision writer queue full: appending on the request path")
    _append([event])


def _append(events: list[NewEvent]) -> None:
    with transaction.atomic():
        with connection.cursor() as cur:
            # the decision is training data, not money: a server crash may lose the last
            # few hundred ms of decisions, and /rank does not wait for the WAL flush (ADR 0043)
            cur.execute("SET LOCAL synchronous_commit = off")
        append_events(events, new_ids=True)


def _ensure_writer() -> None:
    if _writer and _writer[0].is_alive():
        return
    with _writer_lock:
        if not (_writer and _writer[0].is_alive()):
            _stop.clear()
            _writer[:] = [threading.Thread(target=_write_forever, name="decision-writer", daemon=True)]
            _writer[0].start()


def _take_batch() -> list[NewEvent]:
    """Up to WRITER_BATCH queued decisions, oldest first."""
    batch: list[NewEvent] = []
    while len(batch) < WRITER_BATCH:
        try:
            batch.append(_pending.popleft())
        except IndexError:
            break
    return batch


def _write_forever() -> None:
    while True:
        stopping = _stop.wait(WRITER_INTERVAL_SECONDS)
        while batch := _take_batch():
            for attempt in range(1, 1_000_000):
                try:
                    _append(batch)
                    break
                except Exception:  # noqa: BLE001 - keep the batch and retry: decisions are not dropped
                    logger.exception("decision writer: append of %d decisions failed (attempt %d)", len(batch), attempt)
                    close_old_connections()
                    connection.close()
                    time.sleep(min(5.0, 0.1 * attempt))
        if stopping:
            break
    connection.close()


def writer_stop(timeout: float = 10.0) -> None:
    """Append what is queued, then end the writer thread and close its connection (tests;
    a later decision starts a new writer)."""
    with _writer_lock:
        if _writer and _writer[0].is_alive():
            _stop.set()
            _writer[0].join(timeout)
        _writer.clear()


def flush(timeout: float = 10.0) -> int:
    """Append what is queued now, on the caller's thread (process exit, tests). Returns
    the number of decisions appended."""
    done = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = _take_batch()
        if not batch:
            break
        _append(batch)
        done += len(batch)
    return done


@atexit.register
def _flush_at_exit() -> None:
    if not _pending:
        return
    try:
        flush()
    except Exception:  # noqa: BLE001 - nothing left to do at exit but say so
        logger.exception("decision writer: %d queued decisions not appended at exit", len(_pending))
