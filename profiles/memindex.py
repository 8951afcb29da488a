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
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import connection

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_FINGERPRINT_SQL = "SELECT count(*), max(updated_at), max(id) FROM profiles_embedding WHERE kind = %s AND version = %s"
# vector_send: pgvector's binary form (int16 dim, int16 unused, dim × float32 big-endian);
# ~20× faster to decode than the text form
_ROWS_SQL = "SELECT key, vector_send(vector) FROM profiles_embedding WHERE kind = %s AND version = %s ORDER BY key"


# below this many rows the float32 scan is as cheap as the int8 pass
COARSE_MIN_ROWS = 2048
# the bound on |int8 score − float32 score| besides the weights' rounding: the query's
# bfloat16 rounding (≤ 2⁻⁹ of a unit dot product), the bfloat16 row scales (≤ 2⁻⁹), the
# bfloat16 output (≤ 2⁻⁹ of |score| ≤ 1) and float32 accumulation: 3 · 2⁻⁹ and a little,
# rounded up to 2⁻⁷
_COARSE_SLACK = 2.0**-7


@dataclass(frozen=True)
class Coarse:
    """An int8 copy of a replica's rows for the first pass of `nearest` (ADR 0064): row i
    is `scales[i] · weights[i]`, each entry off by at most half its row's scale. A 10k ×
    384 space is 3.8 MB instead of 15 MB, scanned by torch's weight-only int8 kernel with a
    bfloat16 query. `width`: the dimension padded to a multiple of 8 (the kernel's block)."""

    weights: torch.Tensor  # (n, width) int8
    scales: torch.Tensor  # (n,) bfloat16, the kernel's
    half_scales: np.ndarray  # (n,) float32: half of each row's scale, rounded up (0: an all-zero row)
    width: int

    @classmethod
    def of(cls, matrix: np.ndarray) -> Coarse | None:
        """The int8 copy, or None where torch's kernel disagrees with the float32 rows
        beyond the bound (checked with a sample of the rows as queries)."""
        import torch  # here, not at import: every process imports profiles, few search

        n, dim = matrix.shape
        width = -(-dim // 8) * 8
        scales = np.abs(matrix).max(axis=1) / 127.0
        weights = np.zeros((n, width), dtype=np.int8)
        weights[:, :dim] = np.rint(matrix / np.where(scales > 0, scales, 1.0)[:, None])
        coarse = cls(
            weights=torch.from_numpy(weights),
            scales=torch.from_numpy(np.where(scales > 0, scales, 1.0).astype(np.float32)).to(torch.bfloat16),
            half_scales=(scales * (0.5 + 2.0**-8)).astype(np.float32),
            width=width,
        )
        try:
            for row in matrix[:: max(1, n // 16)][:16]:
                norm = float(np.linalg.norm(row))
                if norm > 0 and not np.all(coarse.upper_bounds(row / norm) >= matrix @ (row / norm)):
                    raise ValueError("int8 scores outside their bound")
        except (RuntimeError, ValueError):
            logger.warning("int8 first pass unavailable for a %d × %d space; scanning float32", n, dim)
            return None
        return coarse

    def upper_bounds(self, unit_vector: np.ndarray) -> np.ndarray:
        """Per row, a bound its float32 dot product with the unit vector cannot exceed: the
        int8 score plus its error (rounding each weight moves a dot product by at most half
        the row's scale times ‖q‖₁, plus _COARSE_SLACK)."""
        import torch

        q = np.zeros(self.width, dtype=np.float32)
        q[: len(unit_vector)] = unit_vector
        # no grad mode needed: none of the tensors requires grad, so nothing is recorded
        out = torch._weight_int8pack_mm(torch.from_numpy(q[None]).to(torch.bfloat16), self.weights, self.scales)
        l1 = float(np.abs(q).sum()) * (1 + 2.0**-8)
        upper: np.ndarray = out.float().numpy()[0] + self.half_scales * l1 + _COARSE_SLACK
        return upper


@dataclass(frozen=True)
class Replica:
    fingerprint: tuple[int, object, object]  # rows, newest updated_at, highest id
    keys: tuple[str, ...]
    matrix: np.ndarray  # (n, dim) float32, unit rows
    coarse: Coarse | None = None  # the int8 first pass (None: small space, or unavailable)


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
    return Replica(
        fingerprint=fingerprint,
        keys=tuple(str(key) for key, _ in rows),
        matrix=matrix,
        coarse=Coarse.of(matrix) if len(rows) >= COARSE_MIN_ROWS else None,
    )


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
    rows whose key `allow` accepts.

    With an int8 copy (ADR 0064) the scan is two passes: the `want` rows with the highest
    upper bounds (int8 score plus its error bound) are scored in float32 and ranked, and
    the answer stands once the k-th accepted row's exact score is above every bound left
    out; otherwise `want` grows. The result is the float32 scan's."""
    n = len(rep.keys)
    if n == 0 or k <= 0:
        return []
    q = unit_vector.astype(np.float32, copy=False)
    # k rows suffice for an unfiltered float32 scan; the int8 order is approximate, and a
    # filter drops rows: both start wider
    want = k if allow is None and rep.coarse is None else min(n, 4 * k)
    if rep.coarse is not None:
        upper = rep.coarse.upper_bounds(q)
        while want < n:
            part = np.sort(np.argpartition(-upper, want - 1)[:want])
            exact = rep.matrix[part] @ q
            best = np.argsort(-exact, kind="stable")
            out, kth = _accepted(rep, part[best], exact[best], k, allow)
            # every row left out scores at most the least upper bound picked
            if len(out) >= k and kth > float(upper[part].min()):
                out.sort(key=lambda kd: (kd[1], kd[0]))
                return out
            want *= 4
    # no int8 copy, or its pass widened to every row: the float32 scan
    scores = rep.matrix @ q
    while True:
        if want >= n:
            top = np.argsort(-scores, kind="stable")
        else:
            part = np.argpartition(-scores, want - 1)[:want]
            top = part[np.argsort(-scores[part], kind="stable")]
        out, _ = _accepted(rep, top, scores[top], k, allow)
        if len(out) >= k or want >= n:
            out.sort(key=lambda kd: (kd[1], kd[0]))
            return out
        want = min(n, want * 4)


def _accepted(
    rep: Replica, rows: np.ndarray, scores: np.ndarray, k: int, allow: Callable[[str], bool] | None
) -> tuple[list[tuple[str, float]], float]:
    """Up to k (key, distance) of `rows` (best first, `scores` aligned) that `allow`
    accepts, and the score of the last one taken."""
    out: list[tuple[str, float]] = []
    last = 0.0
    for i, score in zip(rows.tolist(), scores.tolist(), strict=True):
        key = rep.keys[i]
        if allow is None or allow(key):
            out.append((key, 1.0 - score))
            last = score
            if len(out) >= k:
                break
    return out, last
