"""Tracking tokens: a compact, URL-safe, signed and expiring envelope around a list of
primitives (ADR 0030). `token = b64url(payload) "." b64url(mac)` where `payload` is the
JSON array `[version, kind, expires_at, *fields]` and `mac` the first 16 bytes of
HMAC-SHA256 under a key derived from TRACKING_SECRET. Internal to the tracking app; the
services turn a served ad into fields and back."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import orjson

VERSION = 1
KIND_IMPRESSION = "i"
KIND_CLICK = "c"
MAC_BYTES = 16  # 128-bit tag: forging one is as hard as guessing a random 128-bit value
MAX_TOKEN_CHARS = 8192  # longer input is rejected before any decoding work

_KEY_CONTEXT = b"adplatform.tracking.token.v1"
_keys: dict[str, bytes] = {}


class TokenError(Exception):
    """Base class: the token must not be honoured and nothing may be recorded."""


class TokenInvalidError(TokenError):
    """Malformed, tampered with, signed with another secret, or of the wrong kind."""


class TokenExpiredError(TokenError):
    """Authentic, but past its expiry time."""


def _key(secret: str) -> bytes:
    # Derived key (domain separation): the same secret may sign other things elsewhere.
    key = _keys.get(secret)
    if key is None:
        key = _keys[secret] = hmac.digest(secret.encode(), _KEY_CONTEXT, hashlib.sha256)
    return key


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    # base64.urlsafe_b64encode without its two Python-level wrappers (hot path)
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(fields: list[Any], *, kind: str, expires_at: int, secret: str) -> str:
    """The token for `fields` (JSON primitives), valid until `expires_at` (epoch seconds)."""
    payload = orjson.dumps([VERSION, kind, expires_at, *fields])
    mac = hmac.digest(_key(secret), payload, hashlib.sha256)[:MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(token: str, *, kind: str, now: float, secret: str, fallbacks: Sequence[str] = ()) -> list[Any]:
    """The fields of an authentic, unexpired token of `kind`; raises TokenInvalidError or
    TokenExpiredError. The signature is checked before anything in the payload is trusted
    (a forged token never learns whether its expiry would have passed). Tokens signed with
    one of the `fallbacks` (secrets being rotated out) are still accepted."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenInvalidError
    body, tag = token.split(".")
    try:
        payload = _unb64(body)
        mac = _unb64(tag)
    except (binascii.Error, ValueError):
        raise TokenInvalidError from None
    # re-encoding must give back the very text: no alternative spellings of one token
    # (padding, non-canonical trailing bits) that would slip past a cache or a log grep
    if _b64(payload) != body or _b64(mac) != tag:
        raise TokenInvalidError
    for candidate in (secret, *fallbacks):
        if hmac.compare_digest(mac, hmac.digest(_key(candidate), payload, hashlib.sha256)[:MAC_BYTES]):
            break
    else:
        raise TokenInvalidError
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise TokenInvalidError from None
    if not isinstance(decoded, list) or len(decoded) < 3 or decoded[0] != VERSION or decoded[1] != kind:
        raise TokenInvalidError
    expires_at = decoded[2]
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        raise TokenInvalidError
    if now >= expires_at:
        raise TokenExpiredError
    return decoded[3:]
