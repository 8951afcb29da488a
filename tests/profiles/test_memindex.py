"""The in-memory replica's search (profiles.memindex): the int8 first pass returns exactly
what the float32 scan returns, its error bound holds, and a kernel that breaks the bound
is not used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from profiles import memindex


def _clustered(rng: np.random.Generator, n: int, dim: int, clusters: int, noise: float) -> np.ndarray:
    """Unit rows around a few directions: many near-ties at the top of a search."""
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _replicas(matrix: np.ndarray) -> tuple[memindex.Replica, memindex.Replica]:
    keys = tuple(f"c{i}" for i in range(len(matrix)))
    plain = memindex.Replica(fingerprint=(len(keys), None, None), keys=keys, matrix=matrix)
    coarse = memindex.Coarse.of(matrix)
    assert coarse is not None
    return plain, memindex.Replica(fingerprint=plain.fingerprint, keys=keys, matrix=matrix, coarse=coarse)


def _queries(rng: np.random.Generator, matrix: np.ndarray, count: int) -> list[np.ndarray]:
    # a shopper's vector is the mean of a few viewed items' vectors
    out = []
    for _ in range(count):
        q = matrix[rng.integers(0, len(matrix), 3)].mean(axis=0)
        out.append((q / np.linalg.norm(q)).astype(np.float32))
    return out


@pytest.mark.parametrize(("n", "dim", "noise"), [(3000, 384, 1.0), (2500, 100, 0.3), (2100, 64, 0.02)])
def test_int8_first_pass_returns_the_float32_scan(n: int, dim: int, noise: float) -> None:
    # given a clustered space (dimension 100 is padded to the kernel's block of 8; noise
    # 0.02: scores closer than the int8 error, so the first pass alone would misorder them)
    rng = np.random.default_rng(7)
    matrix = _clustered(rng, n, dim, clusters=40, noise=noise)
    plain, fast = _replicas(matrix)
    allowed = {f"c{i}" for i in range(0, n, 3)}
    rare = {f"c{i}" for i in range(0, n, 499)}  # 6 rows: every pass widens to the full scan
    # when both search with and without filters
    for q in _queries(rng, matrix, 60):
        for k, allow in ((1, None), (40, None), (40, allowed.__contains__), (10, rare.__contains__)):
            expected = memindex.nearest(plain, q, k, allow)
            got = memindex.nearest(fast, q, k, allow)
            # then the same keys in the same order, the same distances
            assert [key for key, _ in got] == [key for key, _ in expected]
            assert [d for _, d in got] == pytest.approx([d for _, d in expected], abs=1e-6)


def test_upper_bounds_hold_for_any_query() -> None:
    # given a space with an all-zero row (a vector of another dimension) and spiky rows
    rng = np.random.default_rng(3)
    matrix = _clustered(rng, 2048, 64, clusters=8, noise=0.5)
    matrix[5] = 0.0
    matrix[6] = np.eye(64, dtype=np.float32)[0]
    coarse = memindex.Coarse.of(matrix)
    assert coarse is not None
    for _ in range(200):
        q = rng.standard_normal(64).astype(np.float32)
        q /= np.linalg.norm(q)
        upper = coarse.upper_bounds(q)
        exact = matrix @ q
        # then no row's float32 score is above its bound, and the bound is tight enough to prune
        assert np.all(upper >= exact)
        assert float(np.median(upper - exact)) < 0.05


def test_a_kernel_outside_the_bound_is_not_used(monkeypatch: Any) -> None:
    # given torch's int8 kernel answering wrongly
    monkeypatch.setattr(torch, "_weight_int8pack_mm", lambda a, w, s: torch.zeros((a.shape[0], w.shape[0])))
    rng = np.random.default_rng(5)
    matrix = _clustered(rng, 2048, 32, clusters=4, noise=0.5)
    # then the replica keeps only the float32 scan
    assert memindex.Coarse.of(matrix) is None
