"""In-memory serving replica of small vector spaces (ADR 0059).

/rank searches the creative space on every request. For the creative counts a shop has
(thousands to tens of thousands), an exact dot product over a float32 matrix held by the
process (10k × 384: 15 MB, ~1.5 ms of one core) is both cheaper than the pgvector HNSW
round trip (~3.3 ms of Postgres CPU, the 384-float literal and the result parsing) and
exact (recall 1.0, filtering applied to every row instead of over-fetching). pgvector
stays the store and the search path for spaces above PROFILES_MEMORY_INDEX_MAX_ROWS, and
for any space until its replica is loaded.

Freshness: a space's fingerprint (row count, newest updated_at, highest id) is read at most
every PROFILES_MEMORY_INDEX_TTL_SECONDS; when it moves, the matrix is reloaded — in a
background thread when PROFILES_MEMORY_INDEX_BACKGROUND (serving keeps the previous matrix
or falls back to HNSW meanwhile), synchronously otherwise (tests: a background thread's
connection would not see the test's transaction)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

_FINGERPRINT_SQL = "SELECT count(*), max(updated_at), max(id) FROM profiles_embedding WHERE kind = %s AND version = %s"
# vector_send: pgvector's binary form (int16 dim, int16 unused, dim × float32 big-endian);
# ~20× faster to decode than the text form
_ROWS_SQL = "SELECT key, vector_send(vector) FROM profiles_embedding WHERE kind = %s AND version = %s ORDER BY key"


@dataclass(frozen=True)
class Replica:
    fingerprint: tuple[int, object, object]  # rows, newest updated_at, highest id
    keys: tuple[str, ...]
    matrix: np.ndarray  # (n, dim) float32, unit rows


_lock = threading.Lock()
_replicas: dict[tuple[str, str], Replica | None] = {}  # None: too large, HNSW only
_checked: dict[tuple[str, str], float] = {}
_loading: set[tuple[str, str]] = set()


def clear_cache() -> None:
    with _lock:
        _replicas.clear()
        _checked.clear()


def _fingerprint(kind: str, version: str) -> tuple[int, object, object]:
    with connection.cursor() as cur:
        cur.execute(_FINGERPRINT_SQL, [kind, version])
        count, newest, highest = cur.fetchone()
    return int(count), newest, highest


def from_send(blob: bytes | memoryview) -> np.ndarray:
    """A pgvector's binary form (`vector_send(v)`: int16 dim, int16 unused, dim × float32
    big-endian) → float32 array. A third of the client CPU of parsing `v::text` (and
    Postgres skips printing 384 floats as decimals)."""
    dim = int.from_bytes(blob[:2], "big")
    return np.frombuffer(blob, dtype=">f4", offset=4, count=dim).astype(np.float32)


def _load(kind: str, version: str, dim: int, fingerprint: tuple[int, object, object]) -> Replica | None:
    if fingerprint[0] > settings.PROFILES_MEMORY_INDEX_MAX_ROWS:
        return None
    with connection.cursor() as cur:
        cur.execute(_ROWS_SQL, [kind, version])
        rows = cur.fetchall()
    matrix = np.zeros((len(rows), dim), dtype=np.float32)
    for i, (_, blob) in enumerate(rows):
        if int.from_bytes(blob[:2], "big") == dim:
            matrix[i] = from_send(blob)
    return Replica(fingerprint=fingerprint, keys=tuple(str(key) for key, _ in rows), matrix=matrix)


def _refresh(kind: str, version: str, dim: int, *, own_connection: bool) -> None:
    space = (kind, version)
    try:
        fp = _fingerprint(kind, version)
        current = _replicas.get(space)
        if current is None or current.fingerprint != fp:
            loaded = _load(kind, version, dim, fp)
            with _lock:
                _replicas[space] = loaded
    except Exception:  # noqa: BLE001 - serving falls back to HNSW; the next check retries
        logger.exception("loading the in-memory replica of %s@%s failed", kind, version)
    finally:
        with _lock:
            _loading.discard(space)
        if own_connection:
            connection.close()


def replica(kind: str, version: str, dim: int) -> Replica | None:
    """The loaded replica of (kind, version), or None (too large, not loaded yet, or
    disabled). Schedules the fingerprint check / reload described above."""
    if int(settings.PROFILES_MEMORY_INDEX_MAX_ROWS) <= 0:
        return None
    space = (kind, version)
    now = time.monotonic()
    if now - _checked.get(space, -1e18) >= float(settings.PROFILES_MEMORY_INDEX_TTL_SECONDS):
        _checked[space] = now
        if settings.PROFILES_MEMORY_INDEX_BACKGROUND:
            with _lock:
                start = space not in _loading
                _loading.add(space)
            if start:
                threading.Thread(
                    target=_refresh, args=(kind, version, dim), kwargs={"own_connection": True}, daemon=True
                ).start()
        else:
            _refresh(kind, version, dim, own_connection=False)
    return _replicas.get(space)


def nearest(
    rep: Replica, unit_vector: np.ndarray, k: int, allow: Callable[[str], bool] | None = None
) -> list[tuple[str, float]]:
    """Exact k nearest rows by cosine distance (1 − dot of unit vectors), ties by key, only
    rows whose key `allow` accepts."""
    n = len(rep.keys)
    if n == 0 or k <= 0:
        return []
    scores = rep.matrix @ unit_vector.astype(np.float32, copy=False)
    want = k if allow is None else min(n, 4 * k)
    while True:
        if want >= n:
            top = np.argsort(-scores, kind="stable")
        else:
            part = np.argpartition(-scores, want - 1)[:want]
            top = part[np.argsort(-scores[part], kind="stable")]
        out: list[tuple[str, float]] = []
        for i in top.tolist():
            key = rep.keys[i]
            if allow is None or allow(key):
                out.append((key, 1.0 - float(scores[i])))
                if len(out) >= k:
                    break
        if len(out) >= k or want >= n:
            out.sort(key=lambda kd: (kd[1], kd[0]))
            return out
        want = min(n, want * 4)
