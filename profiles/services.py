"""Writes of the profiles app: embedding refresh (products, creatives, shoppers), learned
embeddings from the two-tower model, segment recompute. Each is idempotent: a second run
with nothing changed writes nothing."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from django.db import connection, transaction
from django.utils import timezone

from campaigns import selectors as campaigns

from . import vectors
from .models import Embedding, EmbeddingEncoder, EmbeddingVersion

logger = logging.getLogger(__name__)

LEARNED_KINDS = ("user_learned", "item_learned", "creative_learned")
ERROR_LEARNED_KIND = "kind must be one of: " + ", ".join(LEARNED_KINDS) + "."
ERROR_EMPTY = "vectors must not be empty."
ERROR_NO_LEARNED_VERSION = "No learned vectors of version {version}."
TEXT_DIM = 384

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EmbeddingRefreshResult:
    version: str
    products: int  # product texts (re-)encoded
    creatives: int
    creatives_removed: int
    users: int  # shopper content vectors written
    users_removed: int
    activated: bool
    dropped_versions: tuple[str, ...]
    seconds: float


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _encode_in_batches(
    items: list[tuple[str, str, str]], *, kind: str, version: str, batch: int, progress: Progress | None
) -> int:
    from .textmodel import encode

    done = 0
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        vecs = encode([text for _, text, _ in chunk])
        vectors.vectors_write(
            kind=kind, version=version, rows=[(key, vecs[i], h) for i, (key, _, h) in enumerate(chunk)]
        )
        done += len(chunk)
        if progress:
            progress(kind, done, len(items))
    return done


def product_texts_stale(*, version: str, limit: int | None = None) -> list[tuple[str, str, str]]:
    """(product_id, text, text_hash) of products whose vector is missing or outdated."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT d.product_id, d.text, d.text_hash FROM profiles_product_doc d "
            "LEFT JOIN profiles_embedding e ON e.kind = 'product_text' AND e.version = %s AND e.key = d.product_id "
            "WHERE e.source_hash IS DISTINCT FROM d.text_hash ORDER BY d.product_id" + (" LIMIT %s" if limit else ""),
            [version, limit] if limit else [version],
        )
        return [(r[0], r[1], r[2]) for r in cur.fetchall()]


def creative_text(headline: str, body: str, variants: Any) -> str:
    extra = [str(v.get("headline") or "") for v in variants or () if isinstance(v, dict)]
    return " · ".join(p.strip() for p in (headline, body, *extra) if p and p.strip())


def _refresh_creatives(*, version: str, batch: int, progress: Progress | None) -> tuple[int, int]:
    approved = {
        str(cid): creative_text(headline, body, variants)
        for cid, headline, body, variants in campaigns.creative_list(advertiser_id=None)
        .filter(status="approved")
        .values_list("id", "headline", "body", "variants")
    }
    stored = vectors.hashes_get(kind="creative_text", version=version)
    todo = [(k, t, _md5(t)) for k, t in approved.items() if stored.get(k) != _md5(t)]
    n = _encode_in_batches(todo, kind="creative_text", version=version, batch=batch, progress=progress)
    gone = [k for k in stored if k not in approved]  # rejected/paused creatives leave the index
    if gone:
        with connection.cursor() as cur:
            cur.execute(
                "DELETE FROM profiles_embedding WHERE kind = 'creative_text' AND version = %s AND key = ANY(%s)",
                [version, gone],
            )
    return n, len(gone)


def users_content_refresh(*, version: str, batch: int = 5000) -> tuple[int, int]:
    """Store the content vector of every consenting shopper whose profile changed since
    their stored vector (time-decayed mean of their products' text vectors)."""
    space = vectors.Space(kind="product_text", version=version, dim=TEXT_DIM)
    written = 0
    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM profiles_embedding e USING profiles_profile p WHERE e.kind = 'user_content' "
            "AND e.key = p.user_key AND NOT p.consent"
        )
        removed = cur.rowcount
    last_key = ""
    while True:
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT p.user_key, p.products::text, {vectors.PROFILE_HASH_SQL} FROM profiles_profile p "
                "LEFT JOIN profiles_embedding e ON e.kind = 'user_content' AND e.version = %s AND e.key = p.user_key "
                f"WHERE p.consent AND p.user_key > %s AND e.source_hash IS DISTINCT FROM {vectors.PROFILE_HASH_SQL} "
                "ORDER BY p.user_key LIMIT %s",
                [version, last_key, batch],
            )
            rows = cur.fetchall()
        if not rows:
            return written, removed
        last_key = rows[-1][0]
        scores = [(key, orjson.loads(products), h) for key, products, h in rows]
        needed = {pid for _, s, _ in scores for pid in s}
        pvecs = vectors.vectors_get(kind="product_text", version=space.version, keys=needed) if needed else {}
        out = []
        for key, s, h in scores:
            acc = np.zeros(TEXT_DIM, dtype=np.float64)
            for pid, w in s.items():
                v = pvecs.get(pid)
                if v is not None:
                    acc += w * v
            if np.linalg.norm(acc) > 0:
                out.append((key, acc, h))
        written += vectors.vectors_write(kind="user_content", version=version, rows=out)


def embeddings_refresh(*, batch_size: int = 1024, progress: Progress | None = None) -> EmbeddingRefreshResult:
    """Encode new/changed product and approved-creative texts with MiniLM, store the
    content vectors of shoppers whose profile changed, build missing HNSW indexes, point
    the three text-space kinds at the current model version, drop old versions."""
    from .textmodel import model_version

    started = time.monotonic()
    version = model_version()
    for kind in ("product_text", "creative_text", "user_content"):
        vectors.version_register(kind=kind, version=version, dim=TEXT_DIM, model="all-MiniLM-L6-v2")
    stale = product_texts_stale(version=version)
    products = _encode_in_batches(stale, kind="product_text", version=version, batch=batch_size, progress=progress)
    creatives, creatives_removed = _refresh_creatives(version=version, batch=batch_size, progress=progress)
    users, users_removed = users_content_refresh(version=version)
    activated = False
    dropped: list[str] = []
    for kind in ("product_text", "creative_text", "user_content"):
        vectors.index_ensure(kind=kind, version=version)
        current = vectors.active(kind)
        if current is None or current.version != version:
            vectors.activate(kind=kind, version=version)
            activated = True
        dropped += vectors.versions_cleanup(kind=kind)
    return EmbeddingRefreshResult(
        version=version,
        products=products,
        creatives=creatives,
        creatives_removed=creatives_removed,
        users=users,
        users_removed=users_removed,
        activated=activated,
        dropped_versions=tuple(dropped),
        seconds=time.monotonic() - started,
    )


def learned_embeddings_write(
    *,
    kind: str,
    version: str,
    vectors: Mapping[str, Any],
    activate: bool,
    model: str = "",
    hashes: Mapping[str, str] | None = None,
    encoder: bytes | None = None,
    checkpoint: str = "",
) -> int:
    """Store the two-tower model's user or item vectors (any dimension, the same for the
    whole version), build the version's HNSW index, and optionally switch the pointer to
    it (old versions beyond one rollback version are dropped). Returns rows written.

    Item keys are the learning pipeline's item ids (product ids); `creative_learned` keys
    are creative ids (the creative's vector in the item space, so `nearest_creatives`
    can search with a `user_learned` vector of the same version); user keys are user ids.
    An active `user_learned` version makes `user_vector` answer in that space.
    Additive options: `hashes` (key → source hash, what the vector was computed from, for
    idempotent refreshes), `encoder` (bytes of the model that computes this version's
    vectors, with the event-log `checkpoint` it was trained up to)."""
    from . import vectors as store

    if kind not in LEARNED_KINDS:
        raise ValueError(ERROR_LEARNED_KIND)
    if not vectors:
        raise ValueError(ERROR_EMPTY)
    first = np.asarray(next(iter(vectors.values())), dtype=np.float32).reshape(-1)
    store.version_register(kind=kind, version=version, dim=int(first.shape[0]), model=model)
    hs = hashes or {}
    n = store.vectors_write(
        kind=kind, version=version, rows=((str(k), v, hs.get(str(k), "")) for k, v in vectors.items())
    )
    if encoder is not None:
        EmbeddingEncoder.objects.update_or_create(
            kind=kind,
            version=version,
            defaults={"artifact": encoder, "checkpoint": checkpoint, "created_at": timezone.now()},
        )
    store.index_ensure(kind=kind, version=version)
    if activate:
        store.activate(kind=kind, version=version)
        store.versions_cleanup(kind=kind)
    return n


def learned_version_activate(*, version: str) -> list[str]:
    """Serve learned `version` for every learned kind that has it (items and creatives
    before shoppers, so a shopper vector never points into a space that is not served
    yet); older versions beyond one rollback version are dropped. Returns the kinds switched."""
    from . import vectors as store

    switched = []
    with transaction.atomic():
        for kind in ("item_learned", "creative_learned", "user_learned"):
            if EmbeddingVersion.objects.filter(kind=kind, version=version).exists():
                store.activate(kind=kind, version=version)
                switched.append(kind)
    for kind in switched:
        store.versions_cleanup(kind=kind)
    if not switched:
        raise ValueError(ERROR_NO_LEARNED_VERSION.format(version=version))
    return switched


def learned_embeddings_delete(*, kind: str, version: str, keys: Collection[str]) -> int:
    """Remove keys from a learned version (e.g. creatives no longer approved)."""
    if kind not in LEARNED_KINDS:
        raise ValueError(ERROR_LEARNED_KIND)
    if not keys:
        return 0
    return int(Embedding.objects.filter(kind=kind, version=version, key__in=list(keys)).delete()[0])


def segments_recompute(*, k: int | None = None, seed: int = 0) -> Any:
    """Cluster shoppers (content embedding + RFM + devices) with k-means on torch and
    replace the segments; see profiles.segmentation."""
    from .segmentation import recompute

    return recompute(k=k, seed=seed)
