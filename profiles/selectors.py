"""Reads of shopper profiles, embeddings and segments (the public surface other apps use).

CONTRACT (docs/contracts.md): signatures and dataclasses here are fixed; the profiles
issue fills in the bodies."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from adplatform.db.prepared import fetch_prepared
from adplatform.eventlog import selectors as eventlog

from . import memindex, vectors
from .folding import PROFILE_EVENT_TYPES, cart_items, decayed, empty_state, epoch, from_epoch
from .models import Embedding, EmbeddingEncoder, Segment, SegmentMembership, SegmentRun
from .projections import PROFILE_COLUMNS, fold_events, lam, read_states, row_to_state


@dataclass(frozen=True)
class ProfileSnapshot:
    """A shopper's profile as of `as_of`. Scores are time-decayed to `as_of`."""

    user_id: str
    as_of: datetime
    consent: bool = True  # False: the shopper opted out; serve non-personalised ads
    categories: dict[str, float] = field(default_factory=dict)  # category (any level of the path) → score
    brands: dict[str, float] = field(default_factory=dict)
    recent_products: tuple[str, ...] = ()  # newest first
    recent_queries: tuple[str, ...] = ()  # newest first
    cart: tuple[str, ...] = ()
    devices: dict[str, int] = field(default_factory=dict)
    price_band: str | None = None  # "low" | "mid" | "high"
    recency_days: float | None = None
    frequency: int = 0  # behaviour events in the profile window
    monetary: float = 0.0  # purchase revenue
    segment: str | None = None  # segment key usable in campaign targeting
    segment_name: str | None = None
    embedding_version: str | None = None
    last_event_at: datetime | None = None
    # additions (not in the original contract; additive only)
    orders: int = 0
    mean_price: float | None = None
    updated_at: datetime | None = None  # when the projection last wrote this profile


DEFAULT_PRICE_BANDS = (25.0, 100.0)  # until a segment run has measured the shoppers' tertiles
_bands_cache: tuple[float, tuple[float, float]] | None = None


def price_band_thresholds() -> tuple[float, float]:
    """(low/mid, mid/high) boundaries of the shoppers' mean interacted price, measured by
    the latest segment run (tertiles); cached for a minute."""
    global _bands_cache
    now = time.monotonic()
    if _bands_cache is not None and now - _bands_cache[0] < 60:
        return _bands_cache[1]
    run = SegmentRun.objects.filter(finished_at__isnull=False).order_by("-id").first()
    tertiles = (run.stats or {}).get("price_tertiles") if run else None
    bands = (float(tertiles[0]), float(tertiles[1])) if tertiles else DEFAULT_PRICE_BANDS
    _bands_cache = (now, bands)
    return bands


def clear_caches() -> None:
    global _bands_cache
    _bands_cache = None
    vectors.clear_cache()


def band_of(mean_price: float | None) -> str | None:
    if mean_price is None:
        return None
    low, high = price_band_thresholds()
    return "low" if mean_price < low else ("mid" if mean_price < high else "high")


def _state_as_of(user_id: str, as_of: datetime) -> dict[str, object]:
    """Point in time: fold the shopper's stream up to `as_of` (same fold as live)."""
    events = [
        e
        for e in eventlog.stream_events(stream=f"user:{user_id}")
        if e.type in PROFILE_EVENT_TYPES and e.occurred_at <= as_of
    ]
    return fold_events(events).get(user_id) or empty_state()


def profile_get(*, user_id: str, as_of: datetime | None = None) -> ProfileSnapshot | None:
    """The shopper's profile, or None when the platform has never seen them.

    With `as_of` earlier than the shopper's newest event the profile is folded from the
    log up to `as_of` (point in time, e.g. for training); otherwise the projection row is
    decayed to `as_of`."""
    stored = read_states([user_id]).get(user_id)
    if stored is None:
        return None
    state, updated_at = stored
    at = as_of or timezone.now()
    newest = max(v for v in (state["last"], state["consent_at"], 0.0) if v is not None)
    if as_of is not None and epoch(as_of) < newest:
        state = _state_as_of(user_id, as_of)
        if state["consent_at"] is None:
            return None
    if not state["consent"]:
        return ProfileSnapshot(user_id=user_id, as_of=at, consent=False, updated_at=updated_at)
    membership = (
        SegmentMembership.objects.filter(user_key=user_id, segment__active=True)
        .values_list("segment_id", "segment__name")
        .first()
    )
    return _snapshot(user_id, state, updated_at, at, membership, vectors.user_space_version(user_id=user_id))


def _snapshot(
    user_id: str,
    state: dict[str, Any],
    updated_at: datetime,
    at: datetime,
    membership: tuple[str, str] | None,
    space: str | None,
) -> ProfileSnapshot:
    t = epoch(at)
    rate = lam()
    mean_price = state["price_sum"] / state["price_weight"] if state["price_weight"] > 0 else None
    return ProfileSnapshot(
        user_id=user_id,
        as_of=at,
        consent=True,
        categories=decayed(state["categories"], ref=state["ref"], at=t, lam=rate),
        brands=decayed(state["brands"], ref=state["ref"], at=t, lam=rate),
        recent_products=tuple(pid for pid, _ in state["recent_products"]),
        recent_queries=tuple(q for q, _ in state["recent_queries"]),
        cart=cart_items(state["cart"]),
        devices=dict(sorted(state["devices"].items(), key=lambda kv: (-kv[1], kv[0]))),
        price_band=band_of(mean_price),
        recency_days=(t - state["last"]) / 86400.0 if state["last"] is not None else None,
        frequency=int(state["frequency"]),
        monetary=float(state["monetary"]),
        segment=membership[0] if membership else None,
        segment_name=membership[1] if membership else None,
        embedding_version=space,
        last_event_at=from_epoch(state["last"]),
        orders=int(state["orders"]),
        mean_price=mean_price,
        updated_at=updated_at,
    )


def user_vector(*, user_id: str) -> tuple[str, np.ndarray] | None:
    """(embedding version, unit vector) of the shopper in the active user-embedding space."""
    return vectors.user_vector(user_id=user_id)


_SERVING_SQL = f"""
SELECT {", ".join("p." + c.strip() for c in PROFILE_COLUMNS.split(","))},
       sg.key, sg.name, vector_send(ul.vector), vector_send(uc.vector)
FROM profiles_profile p
LEFT JOIN profiles_segment_membership m ON m.user_key = p.user_key
LEFT JOIN profiles_segment sg ON sg.key = m.segment_key AND sg.active
LEFT JOIN profiles_embedding ul ON ul.kind = 'user_learned' AND ul.version = %(learned)s AND ul.key = p.user_key
LEFT JOIN profiles_embedding uc ON uc.kind = 'user_content' AND uc.version = %(content)s AND uc.key = p.user_key
     AND uc.source_hash = {vectors.PROFILE_HASH_SQL}
WHERE p.user_key = %(user)s
"""


def serving_profile(
    *, user_id: str, as_of: datetime | None = None, vector: bool = True
) -> tuple[ProfileSnapshot | None, tuple[str, np.ndarray] | None]:
    """`profile_get(user_id=…, as_of=…)` and, with `vector` for a consenting shopper,
    `user_vector(…)`.
    Now (`as_of` None, the /rank hot path) in one round trip: profile row, segment and
    stored vectors in one statement; the content vector is computed from the profile only
    when the stored one is stale (as user_vector does)."""
    if as_of is not None:
        profile = profile_get(user_id=user_id, as_of=as_of)
        wanted = vector and profile is not None and profile.consent
        return profile, user_vector(user_id=user_id) if wanted else None
    learned, products = vectors.active("user_learned"), vectors.active("product_text")
    rows = fetch_prepared(
        _SERVING_SQL,
        {"user": user_id, "learned": learned.version if learned else None,
         "content": products.version if products else None},
    )  # fmt: skip
    if not rows:
        return None, None
    row = rows[0]
    state, updated_at = row_to_state(row), row[20]
    at = timezone.now()
    if not state["consent"]:
        return ProfileSnapshot(user_id=user_id, as_of=at, consent=False, updated_at=updated_at), None
    segment_key, segment_name, learned_blob, content_blob = row[21:25]
    membership = (segment_key, segment_name) if segment_key is not None else None
    got: tuple[str, np.ndarray] | None = None
    space = f"user_content:{products.version}" if products is not None else None
    if learned is not None and learned_blob is not None:
        space = f"user_learned:{learned.version}"
        got = (space, memindex.from_send(learned_blob)) if vector else None
    elif products is not None and vector:
        content_space = f"user_content:{products.version}"
        if content_blob is not None:
            got = content_space, memindex.from_send(content_blob)
        else:  # stale or never stored: computed from the profile, as user_vector does
            vec = vectors.content_vector(state["products"], space=products)
            got = (content_space, vec) if vec is not None else None
    return _snapshot(user_id, state, updated_at, at, membership, space), got


def text_vector(*, text: str, wait: bool = True) -> np.ndarray | None:
    """A query/text embedding in the same space as creative/product text embeddings.
    `wait=False` (the serving path): None unless memoised; the text is then encoded in the
    background for the next request."""
    if not text or not text.strip():
        return None
    from .textmodel import encode_cached

    return encode_cached(" ".join(text.split())[:1000], wait=wait)


def _creative_space(vector: np.ndarray, space: str | None) -> tuple[str, str | None]:
    """(kind, version) of the creative vectors to search for a shopper vector of `space`."""
    kind, version = "creative_text", None
    if space is not None:
        prefix, _, v = space.partition(":")
        if prefix in ("user_learned", "item_learned", "creative_learned") and v:
            kind, version = "creative_learned", v
    else:
        # no space named: a vector that cannot be a text vector but fits the active learned
        # creative space is searched there (instead of silently finding nothing)
        dim = int(np.asarray(vector).reshape(-1).shape[0])
        text, learned = vectors.active("creative_text"), vectors.active("creative_learned")
        if (text is None or text.dim != dim) and learned is not None and learned.dim == dim:
            kind, version = "creative_learned", learned.version
    return kind, version


def nearest_creatives(
    *, vector: np.ndarray, k: int, creative_ids: Collection[int] | None = None, space: str | None = None
) -> list[tuple[int, float]]:
    """Up to k (creative_id, cosine distance) nearest to `vector` by HNSW, restricted to
    `creative_ids` when given (filtered queries still return k when k exist).

    `space` (additive) is the version string `user_vector` answered with: for
    `user_learned:<v>` (or `item_learned:<v>`) the creatives' learned vectors of version
    <v> are searched (the same space as the vector); for `user_content:…` the MiniLM
    creative texts (the original behaviour). Without `space`, the text space unless the
    vector's dimension only fits the active learned creative space."""
    keys = None if creative_ids is None else [str(c) for c in creative_ids]
    if keys is not None and not keys:
        return []
    kind, version = _creative_space(vector, space)
    return [(int(key), d) for key, d in vectors.nearest(kind=kind, vector=vector, k=k, keys=keys, version=version)]


def nearest_creatives_exact(
    *, vector: np.ndarray, k: int, creative_ids: Collection[int] | None = None, space: str | None = None
) -> list[tuple[int, float]] | None:
    """Like nearest_creatives, exact, from the process's in-memory replica of the creative
    space (ADR 0059); `creative_ids` only needs membership tests. None when the space has
    no loaded replica (too large, or still loading): use nearest_creatives."""
    kind, version = _creative_space(vector, space)
    allow = None if creative_ids is None else (lambda key: key.isdigit() and int(key) in creative_ids)
    got = vectors.nearest_replica(kind=kind, vector=vector, k=k, allow=allow, version=version)
    return None if got is None else [(int(key), d) for key, d in got]


def nearest_products(
    *, vector: np.ndarray, k: int, in_stock: bool | None = None, category: str | None = None
) -> list[tuple[str, float]]:
    """Up to k (product_id, cosine distance) in the product text space, optionally only
    in-stock products and/or products with `category` anywhere on their path."""
    return vectors.nearest_products(vector=vector, k=k, in_stock=in_stock, category=category)


@dataclass(frozen=True)
class SegmentInfo:
    key: str
    name: str
    description: str
    size: int


def segment_keys() -> list[str]:
    """Keys of the current segments (valid values of campaign targeting `segments`)."""
    return list(Segment.objects.filter(active=True).order_by("key").values_list("key", flat=True))


def segment_list() -> list[SegmentInfo]:
    return [
        SegmentInfo(key=s.key, name=s.name, description=s.description, size=s.size)
        for s in Segment.objects.filter(active=True).order_by("-size", "key")
    ]


def half_life_days() -> float:
    return float(settings.PROFILES_HALF_LIFE_DAYS)


# --- learned vectors (ranking.retrieval; additive) -----------------------------------


@dataclass(frozen=True)
class LearnedEncoder:
    kind: str
    version: str
    artifact: bytes
    checkpoint: str  # "tx_id:position" of the newest event the encoder was trained on


def learned_version(*, kind: str = "user_learned") -> str | None:
    """The active version of a learned kind (user_learned | item_learned | creative_learned)."""
    space = vectors.active(kind)
    return space.version if space is not None else None


def learned_encoder(*, kind: str = "user_learned", version: str | None = None) -> LearnedEncoder | None:
    """The encoder stored with a learned version (the active one by default)."""
    v = version or learned_version(kind=kind)
    if v is None:
        return None
    row = EmbeddingEncoder.objects.filter(kind=kind, version=v).first()
    if row is None:
        return None
    return LearnedEncoder(kind=kind, version=v, artifact=bytes(row.artifact), checkpoint=row.checkpoint)


def learned_vector_hashes(*, kind: str, version: str, keys: Collection[str]) -> dict[str, str]:
    """key → source hash of the stored learned vectors of `version` among `keys`."""
    return dict(
        Embedding.objects.filter(kind=kind, version=version, key__in=list(keys)).values_list("key", "source_hash")
    )


def learned_vectors(*, kind: str, version: str, keys: Collection[str]) -> dict[str, np.ndarray]:
    return vectors.vectors_get(kind=kind, version=version, keys=keys)


def product_text_vectors(*, product_ids: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """MiniLM text vectors of products in the active product_text version (all when
    `product_ids` is None); {} before the first embeddings refresh."""
    space = vectors.active("product_text")
    if space is None:
        return {}
    if product_ids is None:
        product_ids = list(
            Embedding.objects.filter(kind="product_text", version=space.version).values_list("key", flat=True)
        )
    return vectors.vectors_get(kind="product_text", version=space.version, keys=product_ids)
