"""Reads of shopper profiles, embeddings and segments (the public surface other apps use).

CONTRACT (docs/contracts.md): signatures and dataclasses here are fixed; the profiles
issue fills in the bodies."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


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


def profile_get(*, user_id: str, as_of: datetime | None = None) -> ProfileSnapshot | None:
    """The shopper's profile, or None when the platform has never seen them."""
    return None


def user_vector(*, user_id: str) -> tuple[str, np.ndarray] | None:
    """(embedding version, unit vector) of the shopper in the active user-embedding space."""
    return None


def text_vector(*, text: str) -> np.ndarray | None:
    """A query/text embedding in the same space as creative/product text embeddings."""
    return None


def nearest_creatives(
    *, vector: np.ndarray, k: int, creative_ids: Collection[int] | None = None
) -> list[tuple[int, float]]:
    """Up to k (creative_id, cosine distance) nearest to `vector` by HNSW, restricted to
    `creative_ids` when given (filtered queries still return k when k exist)."""
    return []


def segment_keys() -> list[str]:
    """Keys of the current segments (valid values of campaign targeting `segments`)."""
    return []
