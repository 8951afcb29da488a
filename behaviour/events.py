"""Shopper behaviour events: wire types (SPEC §4) → stored event types, and the fast
validator used by the API and `import_events` alike.

Validation is hand-written rather than DRF serializers: it runs for every event at
ingestion rates of tens of thousands per second, and must still give field-level errors.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from adplatform.eventlog.events import EventType, register
from adplatform.eventlog.services import NewEvent, to_json

# wire type → stored (past-tense) type
WIRE_TO_STORED = {
    "page_view": "PageViewed",
    "product_view": "ProductViewed",
    "search": "SearchPerformed",
    "add_to_cart": "CartItemAdded",
    "remove_from_cart": "CartItemRemoved",
    "purchase": "OrderPlaced",
    "ad_impression": "AdImpressionReported",
    "ad_click": "AdClickReported",
}
STORED_TO_WIRE = {v: k for k, v in WIRE_TO_STORED.items()}
# What survives erasure: the business facts (which product, how many, for how much),
# never free text (queries, URLs), order ids or tracking tokens.
_ERASURE_KEEPS = {
    "PageViewed": frozenset(),
    "ProductViewed": frozenset({"product_id"}),
    "SearchPerformed": frozenset(),
    "CartItemAdded": frozenset({"product_id", "quantity", "price"}),
    "CartItemRemoved": frozenset({"product_id"}),
    "OrderPlaced": frozenset({"items", "revenue", "currency"}),
    "AdImpressionReported": frozenset(),
    "AdClickReported": frozenset(),
}
for _stored, _keeps in _ERASURE_KEEPS.items():
    register(EventType(_stored, version=1, personal=True, erasure_keeps=_keeps))

BEHAVIOUR_EVENT_TYPES = frozenset(WIRE_TO_STORED.values())

ERR_REQUIRED = "This field is required."
ERR_NOT_OBJECT = "Must be a JSON object."
ERR_NOT_STRING = "Must be a string."
ERR_BLANK = "Must not be blank."
ERR_TOO_LONG = "At most {n} characters."
ERR_UUID = "Must be a UUID."
ERR_TYPE = "Unknown event type; expected one of: " + ", ".join(WIRE_TO_STORED) + "."
ERR_TIMESTAMP = "Must be an RFC 3339 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z."
ERR_FUTURE = "Is more than 5 minutes in the future."
ERR_TOO_OLD = "Is before 2000-01-01."
ERR_UNKNOWN_FIELD = "Unknown field."
ERR_BOOL = "Must be true or false."
ERR_INT = "Must be an integer between {lo} and {hi}."
ERR_CURRENCY = "Must be a 3-letter ISO 4217 code, e.g. EUR."
ERR_LIST = "Must be a non-empty list of at most {n} items."
ERR_PROPERTIES_TOO_LARGE = "Properties exceed {n} bytes."

ERR_MONEY = "Must be a non-negative decimal number (as a number or a string), at most 4 decimal places."

MAX_ID = 128
MAX_STRING = 2048
MAX_ITEMS = 500
MAX_PROPERTIES_BYTES = 16 * 1024
TOP_LEVEL_FIELDS = frozenset({"event_id", "type", "user_id", "session_id", "timestamp", "properties", "consent"})
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EPOCH_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)

Errors = dict[str, list[str]]
# A checker gets (value, prefix, name, errors); it builds the field path "prefix.name" only
# when it reports an error (the hot path allocates no strings for valid events).
Checker = Callable[[Any, str, str, Errors], Any]


def _err(errors: Errors, field: str, msg: str) -> None:
    errors.setdefault(field, []).append(msg)


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _string(limit: int) -> Checker:
    def check(value: Any, prefix: str, name: str, errors: Errors) -> Any:
        if type(value) is not str:
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                _err(errors, _path(prefix, name), ERR_NOT_STRING)
                return None
            value = str(value)
        if not value or value.isspace():
            _err(errors, _path(prefix, name), ERR_BLANK)
        elif len(value) > limit:
            _err(errors, _path(prefix, name), ERR_TOO_LONG.format(n=limit))
        return value

    return check


def _int(lo: int, hi: int) -> Checker:
    def check(value: Any, prefix: str, name: str, errors: Errors) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            _err(errors, _path(prefix, name), ERR_INT.format(lo=lo, hi=hi))
            return None
        return value

    return check


_MONEY_MAX = Decimal("1e12")


def _money(value: Any, prefix: str, name: str, errors: Errors) -> Any:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, str))
        or (isinstance(value, str) and len(value) > 32)
    ):
        _err(errors, _path(prefix, name), ERR_MONEY)
        return None
    try:
        amount = Decimal(value if type(value) is str else str(value))
    except InvalidOperation:
        _err(errors, _path(prefix, name), ERR_MONEY)
        return None
    if not amount.is_finite() or amount < 0 or amount > _MONEY_MAX or amount.as_tuple().exponent < -4:  # type: ignore[operator]
        _err(errors, _path(prefix, name), ERR_MONEY)
        return None
    return str(amount)


def _currency(value: Any, prefix: str, name: str, errors: Errors) -> Any:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        _err(errors, _path(prefix, name), ERR_CURRENCY)
        return None
    return value


_id = _string(MAX_ID)
_text = _string(MAX_STRING)
_quantity = _int(1, 100_000)


def _items(value: Any, prefix: str, name: str, errors: Errors) -> Any:
    field = _path(prefix, name)
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ITEMS:
        _err(errors, field, ERR_LIST.format(n=MAX_ITEMS))
        return None
    out = []
    for i, item in enumerate(value):
        path = f"{field}.{i}"
        if not isinstance(item, dict):
            _err(errors, path, ERR_NOT_OBJECT)
            continue
        out.append({**item, **_check_props(item, _ITEM_FIELDS, path, errors)})
    return out


_ITEM_FIELDS: dict[str, Checker] = {"product_id": _id, "quantity": _quantity, "price": _money}

# Required properties per wire type (SPEC §4); unknown properties are kept as sent.
REQUIRED_PROPERTIES: dict[str, dict[str, Checker]] = {
    "page_view": {"url": _text},
    "product_view": {"product_id": _id},
    "search": {"query": _string(512)},
    "add_to_cart": {"product_id": _id, "quantity": _quantity, "price": _money},
    "remove_from_cart": {"product_id": _id},
    "purchase": {"order_id": _id, "items": _items, "revenue": _money, "currency": _currency},
    "ad_impression": {"token": _text},
    "ad_click": {"token": _text},
}


def _check_props(props: dict[str, Any], spec: dict[str, Checker], prefix: str, errors: Errors) -> dict[str, Any]:
    cleaned = {}
    for name, check in spec.items():
        value = props.get(name)
        if value is None:
            _err(errors, _path(prefix, name), ERR_REQUIRED)
            continue
        cleaned[name] = check(value, prefix, name, errors)
    return cleaned


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


@dataclass(frozen=True)
class ValidationOutcome:
    event: NewEvent | None
    errors: Errors
    event_id: str | None


def validate_behaviour_event(raw: Any, *, now: datetime, source: str, max_future: timedelta) -> ValidationOutcome:
    """Check one wire event; on success return the NewEvent to append."""
    errors: Errors = {}
    if not isinstance(raw, dict):
        return ValidationOutcome(None, {"non_field_errors": [ERR_NOT_OBJECT]}, None)
    if not TOP_LEVEL_FIELDS.issuperset(raw):
        for key in raw:
            if key not in TOP_LEVEL_FIELDS:
                _err(errors, str(key)[:64], ERR_UNKNOWN_FIELD)

    raw_id = raw.get("event_id")
    event_uuid: uuid.UUID | None = None
    if raw_id is None:
        _err(errors, "event_id", ERR_REQUIRED)
    elif not isinstance(raw_id, str) or len(raw_id) > 64:
        _err(errors, "event_id", ERR_UUID)
    else:
        try:
            event_uuid = uuid.UUID(raw_id)
        except ValueError:
            _err(errors, "event_id", ERR_UUID)

    wire_type = raw.get("type")
    if wire_type is None:
        _err(errors, "type", ERR_REQUIRED)
    elif not isinstance(wire_type, str) or wire_type not in WIRE_TO_STORED:
        _err(errors, "type", ERR_TYPE)
        wire_type = None

    user_id = raw.get("user_id")
    if user_id is None:
        _err(errors, "user_id", ERR_REQUIRED)
    else:
        user_id = _id(user_id, "", "user_id", errors)

    session_id = raw.get("session_id")
    if session_id is not None:
        session_id = _id(session_id, "", "session_id", errors)

    consent = raw.get("consent", True)
    if not isinstance(consent, bool):
        _err(errors, "consent", ERR_BOOL)

    ts_raw = raw.get("timestamp")
    occurred_at = None
    if ts_raw is None:
        _err(errors, "timestamp", ERR_REQUIRED)
    else:
        occurred_at = parse_timestamp(ts_raw)
        if occurred_at is None:
            _err(errors, "timestamp", ERR_TIMESTAMP)
        elif occurred_at > now + max_future:
            _err(errors, "timestamp", ERR_FUTURE)
        elif occurred_at < _EPOCH_FLOOR:
            _err(errors, "timestamp", ERR_TOO_OLD)

    props = raw.get("properties")
    data: dict[str, Any] = {}
    if props is None:
        props = {}
    if not isinstance(props, dict):
        _err(errors, "properties", ERR_NOT_OBJECT)
    elif wire_type is not None:
        cleaned = _check_props(props, REQUIRED_PROPERTIES[wire_type], "properties", errors)
        data = {**props, **cleaned}
        if not errors and len(to_json(data)) > MAX_PROPERTIES_BYTES:
            _err(errors, "properties", ERR_PROPERTIES_TOO_LARGE.format(n=MAX_PROPERTIES_BYTES))

    shown_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
    if errors:
        return ValidationOutcome(None, errors, shown_id)
    assert event_uuid is not None and wire_type is not None and occurred_at is not None
    meta: dict[str, Any] = {"source": source}
    if session_id is not None:
        meta["session_id"] = session_id
    if consent is False:
        meta["consent"] = False
    event = NewEvent(
        type=WIRE_TO_STORED[wire_type],
        stream=f"user:{user_id}",
        data=data,
        occurred_at=occurred_at,
        event_id=event_uuid,
        user_key=user_id,
        meta=meta,
    )
    return ValidationOutcome(event, {}, shown_id)
