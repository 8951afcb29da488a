"""Reads for API keys: resolve a bearer key to its principal."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .models import ApiKey
from .services import hash_key

_CACHE_TTL_SECONDS = 5.0
_cache: dict[str, tuple[float, Principal | None]] = {}


@dataclass(frozen=True)
class Principal:
    key_id: int
    scopes: frozenset[str]
    advertiser_id: int | None

    @property
    def is_authenticated(self) -> bool:  # DRF's IsAuthenticated reads this
        return True

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def principal_for_key(raw_key: str) -> Principal | None:
    """Cached for a few seconds per process: the hot endpoints (/events, /rank) must not
    pay a query per request; a revocation takes effect within the TTL."""
    digest = hash_key(raw_key)
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = (
        ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True)
        .values_list("pk", "scopes", "advertiser_id")
        .first()
    )
    principal = Principal(key_id=row[0], scopes=frozenset(row[1]), advertiser_id=row[2]) if row else None
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[digest] = (now + _CACHE_TTL_SECONDS, principal)
    return principal


def clear_cache() -> None:
    _cache.clear()
