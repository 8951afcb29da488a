"""Versioned vectors in pgvector (ADR 0021): one table with an untyped `vector` column,
one partial HNSW expression index per (kind, version) — `(vector::vector(dim))
vector_cosine_ops WHERE kind = … AND version = …` — and a pointer row per kind naming the
served version. Queries repeat the index expression and predicate literally (Django's
client-side binding inlines the parameters), so the planner can use the partial index.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from . import memindex
from .models import Embedding, EmbeddingEncoder, EmbeddingSpace, EmbeddingVersion

KINDS = ("product_text", "creative_text", "user_content", "user_learned", "item_learned", "creative_learned")
USER_KINDS = ("user_content", "user_learned")
_VERSION_RE = re.compile(r"^[A-Za-z0-9._:@+\-]{1,128}$")
ERROR_KIND = "Unknown embedding kind {kind!r}; expected one of: " + ", ".join(KINDS) + "."
ERROR_VERSION = "Version must be 1-128 characters of letters, digits and . _ : @ + -."
ERROR_DIM = "{kind}@{version} holds {dim}-d vectors; got {got}-d."
ERROR_NO_VERSION = "No stored version {version!r} of {kind}."
MAX_DIM = 2000  # HNSW limit for `vector`


@dataclass(frozen=True)
class Space:
    kind: str
    version: str
    dim: int


def check_kind_version(kind: str, version: str) -> None:
    if kind not in KINDS:
        raise ValueError(ERROR_KIND.format(kind=kind))
    if not _VERSION_RE.match(version):
        raise ValueError(ERROR_VERSION)


def index_name(kind: str, version: str) -> str:
    return f"profiles_emb_{kind}_{hashlib.sha1(version.encode()).hexdigest()[:12]}"


def version_register(*, kind: str, version: str, dim: int, model: str = "") -> EmbeddingVersion:
    check_kind_version(kind, version)
    if not 1 <= dim <= MAX_DIM:
        raise ValueError(ERROR_DIM.format(kind=kind, version=version, dim=f"1..{MAX_DIM}", got=dim))
    row, _ = EmbeddingVersion.objects.get_or_create(
        kind=kind,
        version=version,
        defaults={"dim": dim, "model": model, "created_at": timezone.now(), "index_name": index_name(kind, version)},
    )
    if row.dim != dim:
        raise ValueError(ERROR_DIM.format(kind=kind, version=version, dim=row.dim, got=dim))
    return row


def _literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


def unit(v: Any) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(arr))
    return arr / n if n > 0 else arr


def vectors_write(*, kind: str, version: str, rows: Iterable[tuple[str, Any, str]], dim: int | None = None) -> int:
    """Upsert (key, vector, source_hash) rows of one version (vectors are normalised to
    unit length: cosine distance). Returns the number of rows written. Bulk path: COPY
    into a temp table, then one INSERT … ON CONFLICT."""
    check_kind_version(kind, version)
    ver = EmbeddingVersion.objects.filter(kind=kind, version=version).first()
    if ver is None:
        raise ValueError(ERROR_NO_VERSION.format(kind=kind, version=version))
    buf = io.StringIO()
    n = 0
    for key, vec, source_hash in rows:
        arr = unit(vec)
        if arr.shape[0] != ver.dim:
            raise ValueError(ERROR_DIM.format(kind=kind, version=version, dim=ver.dim, got=arr.shape[0]))
        buf.write(f"{key}\t{_literal(arr)}\t{source_hash}\n")
        n += 1
    if not n:
        return 0
    with transaction.atomic():
        connection.ensure_connection()
        with connection.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS profiles_vec_in (key text, vector vector, source_hash text) "
                "ON COMMIT DELETE ROWS"
            )
            raw = cur.cursor  # psycopg cursor under Django's wrapper
            with raw.copy("COPY profiles_vec_in (key, vector, source_hash) FROM STDIN") as copy:
                copy.write(buf.getvalue())
            cur.execute(
                """
                INSERT INTO profiles_embedding AS t (kind, version, key, vector, source_hash, updated_at)
                SELECT DISTINCT ON (key) %s, %s, key, vector, source_hash, now() FROM profiles_vec_in ORDER BY key
                ON CONFLICT (kind, version, key) DO UPDATE SET
                    vector = EXCLUDED.vector, source_hash = EXCLUDED.source_hash, updated_at = EXCLUDED.updated_at
                """,
                [kind, version],
            )
            cur.execute("TRUNCATE profiles_vec_in")
    return n


def index_ensure(*, kind: str, version: str, m: int = 16, ef_construction: int = 64) -> str:
    """Build the version's HNSW index if missing (maintenance_work_mem 1 GB: ~2.4× faster)
    and record the version's row count; call after a round of writes."""
    ver = EmbeddingVersion.objects.get(kind=kind, version=version)
    name = index_name(kind, version)
    ddl = sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON profiles_embedding USING hnsw ((vector::vector({dim})) "
        "vector_cosine_ops) WITH (m = {m}, ef_construction = {efc}) WHERE kind = {kind} AND version = {version}"
    ).format(
        name=sql.Identifier(name),
        dim=sql.Literal(ver.dim),
        m=sql.Literal(m),
        efc=sql.Literal(ef_construction),
        kind=sql.Literal(kind),
        version=sql.Literal(version),
    )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cur.execute(ddl.as_string(cur.cursor))
    EmbeddingVersion.objects.filter(pk=ver.pk).update(
        rows=Embedding.objects.filter(kind=kind, version=version).count(), refreshed_at=timezone.now()
    )
    return name


def activate(*, kind: str, version: str) -> None:
    """Switch the served version of `kind`: one pointer update."""
    check_kind_version(kind, version)
    if not EmbeddingVersion.objects.filter(kind=kind, version=version).exists():
        raise ValueError(ERROR_NO_VERSION.format(kind=kind, version=version))
    EmbeddingSpace.objects.update_or_create(
        kind=kind, defaults={"active_version": version, "updated_at": timezone.now()}
    )
    _active_cache.clear()


def versions_cleanup(*, kind: str, keep_previous: int = 1) -> list[str]:
    """Drop every version of `kind` except the active one and the `keep_previous` newest
    others (kept for a quick rollback). Returns the dropped versions."""
    space = EmbeddingSpace.objects.filter(kind=kind).first()
    active_version = space.active_version if space else ""
    others = list(
        EmbeddingVersion.objects.filter(kind=kind).exclude(version=active_version).order_by("-created_at", "-id")
    )
    dropped = []
    for ver in others[keep_previous:]:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                sql.SQL("DROP INDEX IF EXISTS {}")
                .format(sql.Identifier(index_name(kind, ver.version)))
                .as_string(cur.cursor)
            )
            Embedding.objects.filter(kind=kind, version=ver.version).delete()
            EmbeddingEncoder.objects.filter(kind=kind, version=ver.version).delete()
            ver.delete()
        dropped.append(ver.version)
    return dropped


_active_cache: dict[str, tuple[float, Space | None]] = {}
_cache_lock = threading.Lock()
ACTIVE_TTL_SECONDS = 2.0


def active(kind: str) -> Space | None:
    """The served (version, dim) of `kind`; cached for a couple of seconds per process (a
    pointer switch is visible everywhere within ACTIVE_TTL_SECONDS)."""
    now = time.monotonic()
    hit = _active_cache.get(kind)
    if hit is not None and now - hit[0] < ACTIVE_TTL_SECONDS:
        return hit[1]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT s.active_version, v.dim FROM profiles_embedding_space s JOIN profiles_embedding_version v "
            "ON v.kind = s.kind AND v.version = s.active_version WHERE s.kind = %s",
            [kind],
        )
        row = cur.fetchone()
    space = Space(kind=kind, version=row[0], dim=int(row[1])) if row else None
    with _cache_lock:
        _active_cache[kind] = (now, space)
    return space


def clear_cache() -> None:
    _active_cache.clear()
    memindex.clear_cache()


def _search_settings(ef_search: int | None) -> str:
    ef = int(ef_search or settings.PROFILES_HNSW_EF_SEARCH)
    # iterative scan (pgvector ≥ 0.8): a filtered query keeps scanning until it has k rows
    return f"SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order; "


def nearest_sql(space: Space, *, filtered: str = "", exact: bool = False, ef_search: int | None = None) -> str:
    """One round trip: the SET LOCALs and the query run as one implicit transaction."""
    dim = space.dim
    prefix = "SET LOCAL enable_indexscan = off; " if exact else _search_settings(ef_search)
    return (
        prefix + "WITH nn AS MATERIALIZED ("
        f"SELECT e.key, (e.vector::vector({dim}) <=> %s::vector({dim})) AS distance FROM profiles_embedding e "
        f"{filtered} WHERE e.kind = %s AND e.version = %s {{extra}} "
        f"ORDER BY e.vector::vector({dim}) <=> %s::vector({dim}) LIMIT %s"
        ") SELECT key, distance FROM nn ORDER BY distance, key"
    )


def _run(query: str, params: Sequence[Any]) -> list[tuple[str, float]]:
    with connection.cursor() as cur:
        cur.execute(query, params)
        while cur.cursor.description is None or len(cur.cursor.description) != 2:
            if not cur.cursor.nextset():
                return []
        return [(str(k), float(d)) for k, d in cur.fetchall()]


def _target(kind: str, vector: Any, version: str | None) -> tuple[Space, np.ndarray] | None:
    """The space to search (active, or the given version) and the query as a unit vector of
    its dimension; None when there is no such space or the dimension does not fit."""
    space = active(kind) if version is None else _space_of(kind, version)
    if space is None:
        return None
    arr = unit(vector)
    return (space, arr) if arr.shape[0] == space.dim else None


def nearest(
    *,
    kind: str,
    vector: Any,
    k: int,
    keys: Sequence[str] | None = None,
    exact: bool = False,
    ef_search: int | None = None,
    version: str | None = None,
) -> list[tuple[str, float]]:
    """Up to k (key, cosine distance) of the active (or given) version, HNSW-ordered."""
    target = _target(kind, vector, version)
    if target is None or k <= 0:
        return []
    space, arr = target
    lit = _literal(arr)
    extra = "AND e.key = ANY(%s)" if keys is not None else ""
    query = nearest_sql(space, exact=exact, ef_search=ef_search).replace("{extra}", extra)
    params: list[Any] = [lit, kind, space.version]
    if keys is not None:
        params.append(list(keys))
    params += [lit, k]
    return _run(query, params)


def nearest_replica(
    *, kind: str, vector: Any, k: int, allow: Callable[[str], bool] | None = None, version: str | None = None
) -> list[tuple[str, float]] | None:
    """Exact k nearest (key, cosine distance) from the process's in-memory replica of the
    space (profiles.memindex), only keys `allow` accepts; None when the space has no
    loaded replica (the caller searches HNSW)."""
    target = _target(kind, vector, version)
    if target is None:
        return []
    space, arr = target
    rep = memindex.replica(space.kind, space.version, space.dim)
    return None if rep is None else memindex.nearest(rep, arr, k, allow)


def nearest_products(
    *, vector: Any, k: int, in_stock: bool | None = None, category: str | None = None, ef_search: int | None = None
) -> list[tuple[str, float]]:
    target = _target("product_text", vector, None)
    if target is None or k <= 0:
        return []
    space, arr = target
    lit = _literal(arr)
    conds: list[str] = []
    cond_params: list[Any] = []
    if in_stock is not None:
        conds.append("AND d.in_stock = %s")
        cond_params.append(in_stock)
    if category is not None:
        conds.append("AND d.category_path @> ARRAY[%s]::varchar[]")
        cond_params.append(category)
    query = nearest_sql(
        space, filtered="JOIN profiles_product_doc d ON d.product_id = e.key", ef_search=ef_search
    ).replace("{extra}", " ".join(conds))
    return _run(query, [lit, "product_text", space.version, *cond_params, lit, k])


def _space_of(kind: str, version: str) -> Space | None:
    ver = EmbeddingVersion.objects.filter(kind=kind, version=version).first()
    return Space(kind=kind, version=version, dim=ver.dim) if ver else None


def vectors_get(*, kind: str, version: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT key, vector_send(vector) FROM profiles_embedding "
            "WHERE kind = %s AND version = %s AND key = ANY(%s)",
            [kind, version, list(keys)],
        )
        return {k: memindex.from_send(v) for k, v in cur.fetchall()}


def hashes_get(*, kind: str, version: str) -> dict[str, str]:
    return dict(Embedding.objects.filter(kind=kind, version=version).values_list("key", "source_hash"))


def content_vector(product_scores: Mapping[str, float], *, space: Space) -> np.ndarray | None:
    """Time-decayed mean of the product text vectors a shopper interacted with."""
    if not product_scores:
        return None
    vecs = vectors_get(kind=space.kind, version=space.version, keys=product_scores)
    if not vecs:
        return None
    acc = np.zeros(space.dim, dtype=np.float64)
    for pid, v in vecs.items():
        acc += product_scores[pid] * v
    return unit(acc) if np.linalg.norm(acc) > 0 else None


def user_space_version(*, user_id: str) -> str | None:
    """The version string user_vector would answer with (without computing it)."""
    learned = active("user_learned")
    if (
        learned is not None
        and Embedding.objects.filter(kind="user_learned", version=learned.version, key=user_id).exists()
    ):
        return f"user_learned:{learned.version}"
    products = active("product_text")
    return f"user_content:{products.version}" if products is not None else None


def user_vector(*, user_id: str) -> tuple[str, np.ndarray] | None:
    """Learned vector when a learned version is active and has this shopper; otherwise the
    content vector (in the product/creative text space, so it can query creatives): the
    stored one when it is as fresh as the profile, else computed now from the profile."""
    learned = active("user_learned")
    if learned is not None:
        got = vectors_get(kind="user_learned", version=learned.version, keys=[user_id])
        if user_id in got:
            return f"user_learned:{learned.version}", got[user_id]
    products = active("product_text")
    if products is None:
        return None
    from .projections import read_states

    stored = read_states([user_id]).get(user_id)
    if stored is None or not stored[0]["consent"]:
        return None
    state, updated_at = stored
    fresh_hash = profile_hash(updated_at)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT vector_send(vector) FROM profiles_embedding "
            "WHERE kind = 'user_content' AND version = %s AND key = %s AND source_hash = %s",
            [products.version, user_id, fresh_hash],
        )
        row = cur.fetchone()
    if row is not None:
        return f"user_content:{products.version}", memindex.from_send(row[0])
    vec = content_vector(state["products"], space=products)
    return None if vec is None else (f"user_content:{products.version}", vec)


# the freshness hash of a user_content vector, in SQL over profiles_profile aliased `p`
PROFILE_HASH_SQL = "((extract(epoch FROM p.updated_at) * 1000000)::bigint)::text"


def profile_hash(updated_at: Any) -> str:
    """Matches PROFILE_HASH_SQL: microseconds since the epoch of profile.updated_at."""
    return str(round(updated_at.timestamp() * 1_000_000)) if updated_at is not None else ""
