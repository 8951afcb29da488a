"""Writes for API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.utils import timezone

from . import scopes as scope_names
from .models import ApiKey

ERROR_UNKNOWN_SCOPE = "Unknown scope: {scope}. Valid scopes: {valid}."
KEY_PREFIX = "adp"


@dataclass(frozen=True)
class IssuedKey:
    id: int
    key: str  # shown once; only its hash is stored
    scopes: tuple[str, ...]
    advertiser_id: int | None


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


def api_key_create(*, scopes: list[str], name: str = "", advertiser_id: int | None = None) -> IssuedKey:
    valid = set(scope_names.ALL_PLATFORM_SCOPES) | {scope_names.ADVERTISER}
    for scope in scopes:
        if scope not in valid:
            raise ValueError(ERROR_UNKNOWN_SCOPE.format(scope=scope, valid=", ".join(sorted(valid))))
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        prefix=prefix,
        key_hash=hash_key(raw),
        name=name,
        scopes=sorted(set(scopes)),
        advertiser_id=advertiser_id,
    )
    return IssuedKey(id=key.pk, key=raw, scopes=tuple(key.scopes), advertiser_id=advertiser_id)


def api_key_revoke(*, key_id: int) -> None:
    ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
