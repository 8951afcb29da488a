"""Business rules of campaigns, creatives, advertisers and placements, checked by the
services before any event is written (never while applying). Each check returns
field-level errors keyed by dotted paths ("dayparts.1.end"); the messages are module
constants that tests import.
"""

from __future__ import annotations

import functools
import re
import string
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator

ERROR_REQUIRED = "This field is required."
ERROR_NAME_BLANK = "Name cannot be blank."
ERROR_TOO_LONG = "At most {limit} characters."
ERROR_NUL = "Null characters are not allowed."
ERROR_CHOICE = "Must be one of: {choices}."
ERROR_TIMEZONE = "Unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin'."
ERROR_CURRENCY = "Unknown currency {value!r}: use an ISO 4217 code such as 'EUR'."
ERROR_CURRENCY_MISMATCH = "A campaign is billed in its advertiser's currency ({currency})."
ERROR_CURRENCY_IMMUTABLE = "The currency of an existing campaign cannot change."
ERROR_AMOUNT_POSITIVE = "Must be greater than 0."
ERROR_AMOUNT_PRECISION = "At most 4 decimal places and 10 digits before the point."
ERROR_BUDGET_REQUIRED = "Set a daily budget, a total budget or both."
ERROR_DAILY_EXCEEDS_TOTAL = "The daily budget cannot exceed the total budget."
ERROR_BID_EXCEEDS_BUDGET = "The bid buys nothing: one {unit} costs {cost}, more than the {which} budget of {budget}."
ERROR_BID_MODEL_OBJECTIVE = "Bid model {bid_model!r} does not fit objective {objective!r}: use {allowed}."
ERROR_END_BEFORE_START = "The end must be after the start."
ERROR_END_IN_PAST = "The end is in the past."
ERROR_TZ_AWARE = "Give a time zone offset (RFC 3339), e.g. 2026-01-31T09:00:00+01:00."
ERROR_DAYPART_DAYS = "Give one or more days, 0 (Monday) to 6 (Sunday), each once."
ERROR_DAYPART_TIME = "Use HH:MM between 00:00 and 24:00."
ERROR_DAYPART_ORDER = "The end of a daypart must be after its start (split windows that cross midnight)."
ERROR_DAYPART_OVERLAP = "Overlaps daypart {other} on {day}."
ERROR_DAYPART_SHAPE = 'Each daypart is {"days": [0..6], "start": "HH:MM", "end": "HH:MM"}.'
ERROR_CAP_SHAPE = 'Each cap is {"scope": "campaign|creative", "max": n, "window_seconds": n}.'
ERROR_CAP_MAX = "The cap must be greater than 0."
ERROR_CAP_WINDOW = "The window must be between 60 seconds and 90 days."
ERROR_CAP_DUPLICATE = "Another cap has the same scope and window."
ERROR_TARGETING_SHAPE = "Targeting is an object of lists: {keys}."
ERROR_TARGETING_UNKNOWN_KEY = "Unknown targeting key {key!r}; known: {keys}."
ERROR_TARGETING_LIST = "Must be a list of non-empty strings (at most 200 items of 200 characters)."
ERROR_TARGETING_VALUE = "Unknown value {value!r}: use {choices}."
ERROR_GEO = "Unknown location {value!r}: use an ISO 3166 country code such as 'DE' or a region such as 'DE-BE'."
ERROR_UNKNOWN_PLACEMENT = "Unknown placement {value!r}."
ERROR_URL = "Enter a valid http(s) URL."
ERROR_HEADLINE_BLANK = "A headline is required."
ERROR_VARIANT_SLOT = "Unknown slot {{{slot}}}: allowed slots are {allowed}."
ERROR_VARIANT_TEMPLATE = "Invalid template: braces must enclose a slot name, like {category}; use {{ and }} for braces."
ERROR_VARIANT_SHAPE = 'Each variant is {"headline": "...", "body": "..." or null}.'
ERROR_TOO_MANY = "At most {limit} items."
ERROR_PLACEMENT_KEY = "Use 1-64 characters: lowercase letters, digits, '-' and '_'."
ERROR_SLOTS = "Slots must be between 1 and 20."
ERROR_FLOOR = "The floor CPM cannot be negative."

OBJECTIVES = ("clicks", "conversions", "reach")
BID_MODELS = ("cpc", "cpm", "cpa")
PACINGS = ("even", "asap")
CAP_SCOPES = ("campaign", "creative")
PAGE_TYPES = ("home", "category", "product", "search", "cart")
DEVICES = ("desktop", "mobile", "tablet")
TARGETING_KEYS = ("categories", "keywords", "segments", "placements", "page_types", "devices", "geo")
# Slots a dynamic creative may fill from the serving context (ranking fills them).
VARIANT_SLOTS = ("brand", "category", "price", "product", "query")
# Which bid models make sense for which objective.
OBJECTIVE_BID_MODELS = {"clicks": ("cpc", "cpm"), "conversions": ("cpa", "cpc", "cpm"), "reach": ("cpm",)}
MAX_DAYPARTS = 28
MAX_CAPS = 10
MAX_VARIANTS = 10

# Active ISO 4217 codes.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
    LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()
)

_TIME_RE = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_GEO_RE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_PLACEMENT_KEY_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
_url_validator = URLValidator(schemes=["http", "https"])
_MAX_AMOUNT = Decimal("9999999999.9999")

Errors = dict[str, list[str]]


class RuleViolationError(Exception):
    """Raised by services: field-level errors, nothing was written."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def raise_if(errors: Errors) -> None:
    if errors:
        raise RuleViolationError(errors)


def check_text(errors: Errors, field: str, value: Any, *, limit: int, blank_message: str | None = None) -> None:
    if not isinstance(value, str) or (blank_message and not value.strip()):
        _add(errors, field, blank_message or ERROR_REQUIRED)
    elif "\x00" in value:
        _add(errors, field, ERROR_NUL)
    elif len(value) > limit:
        _add(errors, field, ERROR_TOO_LONG.format(limit=limit))


def check_choice(errors: Errors, field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _add(errors, field, ERROR_CHOICE.format(choices=", ".join(choices)))


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"})


def check_timezone(errors: Errors, field: str, value: Any) -> None:
    if not isinstance(value, str) or value not in _timezones():
        _add(errors, field, ERROR_TIMEZONE.format(value=value))


def check_currency(errors: Errors, field: str, value: Any) -> None:
    if value not in CURRENCIES:
        _add(errors, field, ERROR_CURRENCY.format(value=value))


def check_amount(errors: Errors, field: str, value: Any, *, required: bool, allow_zero: bool = False) -> None:
    if value is None:
        if required:
            _add(errors, field, ERROR_REQUIRED)
        return
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        _add(errors, field, ERROR_AMOUNT_PRECISION)
        return
    if not amount.is_finite() or amount > _MAX_AMOUNT or amount.as_tuple().exponent < -4:  # type: ignore[operator]
        _add(errors, field, ERROR_AMOUNT_PRECISION)
    elif amount < 0 or (amount == 0 and not allow_zero):
        _add(errors, field, ERROR_FLOOR if allow_zero else ERROR_AMOUNT_POSITIVE)


def check_url(errors: Errors, field: str, value: Any) -> None:
    if not isinstance(value, str) or len(value) > 2048:
        _add(errors, field, ERROR_URL)
        return
    try:
        _url_validator(value)
    except DjangoValidationError:
        _add(errors, field, ERROR_URL)


def parse_hhmm(value: str) -> int:
    """Minutes since midnight of an already validated "HH:MM" (24:00 → 1440)."""
    h, m = value.split(":")
    return int(h) * 60 + int(m)


def hhmm_to_time(value: str) -> time:
    minutes = parse_hhmm(value)
    return time.max if minutes >= 1440 else time(minutes // 60, minutes % 60)


def check_dayparts(errors: Errors, value: Any) -> None:
    if not isinstance(value, list):
        _add(errors, "dayparts", ERROR_DAYPART_SHAPE)
        return
    if len(value) > MAX_DAYPARTS:
        _add(errors, "dayparts", ERROR_TOO_MANY.format(limit=MAX_DAYPARTS))
        return
    windows: list[tuple[int, int, int, int]] = []  # (day, start, end, index)
    for i, part in enumerate(value):
        path = f"dayparts.{i}"
        if not isinstance(part, Mapping) or set(part) - {"days", "start", "end"}:
            _add(errors, path, ERROR_DAYPART_SHAPE)
            continue
        days = part.get("days")
        ok_days = (
            isinstance(days, list)
            and days
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days)
            and len(set(days)) == len(days)
        )
        if not ok_days:
            _add(errors, f"{path}.days", ERROR_DAYPART_DAYS)
        bounds = []
        for key in ("start", "end"):
            raw = part.get(key)
            if not isinstance(raw, str) or not _TIME_RE.match(raw) or parse_hhmm(raw) > 1440:
                _add(errors, f"{path}.{key}", ERROR_DAYPART_TIME)
            else:
                bounds.append(parse_hhmm(raw))
        if len(bounds) == 2 and bounds[1] <= bounds[0]:
            _add(errors, f"{path}.end", ERROR_DAYPART_ORDER)
        elif ok_days and len(bounds) == 2:
            for d in days:  # type: ignore[union-attr]
                windows.append((d, bounds[0], bounds[1], i))
    windows.sort()
    day_names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    reach: tuple[int, int, int] | None = None  # (day, end, index) of the window reaching furthest so far
    for day, start, end, index in windows:
        if reach is not None and reach[0] == day and start < reach[1] and reach[2] != index:
            _add(errors, f"dayparts.{index}", ERROR_DAYPART_OVERLAP.format(other=reach[2], day=day_names[day]))
        if reach is None or reach[0] != day or end > reach[1]:
            reach = (day, end, index)


def check_frequency_caps(errors: Errors, value: Any) -> None:
    if not isinstance(value, list):
        _add(errors, "frequency_caps", ERROR_CAP_SHAPE)
        return
    if len(value) > MAX_CAPS:
        _add(errors, "frequency_caps", ERROR_TOO_MANY.format(limit=MAX_CAPS))
        return
    seen: set[tuple[Any, Any]] = set()
    for i, cap in enumerate(value):
        path = f"frequency_caps.{i}"
        if not isinstance(cap, Mapping) or set(cap) != {"scope", "max", "window_seconds"}:
            _add(errors, path, ERROR_CAP_SHAPE)
            continue
        check_choice(errors, f"{path}.scope", cap["scope"], CAP_SCOPES)
        mx, window = cap["max"], cap["window_seconds"]
        if not isinstance(mx, int) or isinstance(mx, bool) or mx <= 0 or mx > 1_000_000:
            _add(errors, f"{path}.max", ERROR_CAP_MAX)
        if not isinstance(window, int) or isinstance(window, bool) or not 60 <= window <= 90 * 86400:
            _add(errors, f"{path}.window_seconds", ERROR_CAP_WINDOW)
        key = (cap["scope"], window)
        if key in seen:
            _add(errors, path, ERROR_CAP_DUPLICATE)
        seen.add(key)


def check_targeting(errors: Errors, value: Any, *, placement_keys: frozenset[str]) -> None:
    if not isinstance(value, Mapping):
        _add(errors, "targeting", ERROR_TARGETING_SHAPE.format(keys=", ".join(TARGETING_KEYS)))
        return
    for key, items in value.items():
        path = f"targeting.{key}"
        if key not in TARGETING_KEYS:
            _add(errors, path, ERROR_TARGETING_UNKNOWN_KEY.format(key=key, keys=", ".join(TARGETING_KEYS)))
            continue
        if (
            not isinstance(items, list)
            or len(items) > 200
            or not all(isinstance(s, str) and s.strip() and len(s) <= 200 and "\x00" not in s for s in items)
        ):
            _add(errors, path, ERROR_TARGETING_LIST)
            continue
        for item in items:
            if key == "page_types" and item not in PAGE_TYPES:
                _add(errors, path, ERROR_TARGETING_VALUE.format(value=item, choices=", ".join(PAGE_TYPES)))
            elif key == "devices" and item not in DEVICES:
                _add(errors, path, ERROR_TARGETING_VALUE.format(value=item, choices=", ".join(DEVICES)))
            elif key == "geo" and not _GEO_RE.match(item):
                _add(errors, path, ERROR_GEO.format(value=item))
            elif key == "placements" and item not in placement_keys:
                _add(errors, path, ERROR_UNKNOWN_PLACEMENT.format(value=item))


def normalize_targeting(value: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Every key present, values stripped, de-duplicated, in a stable order."""
    out: dict[str, list[str]] = {}
    for key in TARGETING_KEYS:
        items = [s.strip() for s in value.get(key) or []]
        out[key] = list(dict.fromkeys(items))
    return out


def check_schedule(errors: Errors, start: Any, end: Any, *, now: datetime, end_changed: bool) -> None:
    for field, value in (("start", start), ("end", end)):
        if value is None:
            if field == "start":
                _add(errors, field, ERROR_REQUIRED)
        elif not isinstance(value, datetime) or value.tzinfo is None:
            _add(errors, field, ERROR_TZ_AWARE)
    if isinstance(start, datetime) and isinstance(end, datetime) and start.tzinfo and end.tzinfo:
        if end <= start:
            _add(errors, "end", ERROR_END_BEFORE_START)
        elif end_changed and end <= now:
            _add(errors, "end", ERROR_END_IN_PAST)


def _fmt(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _cost_of_one(bid_model: str, bid: Decimal) -> tuple[str, Decimal]:
    if bid_model == "cpm":
        return "impression", bid / 1000
    return ("click" if bid_model == "cpc" else "conversion"), bid


def check_bid_and_budgets(errors: Errors, spec: Mapping[str, Any]) -> None:
    check_choice(errors, "objective", spec.get("objective"), OBJECTIVES)
    check_choice(errors, "bid_model", spec.get("bid_model"), BID_MODELS)
    check_amount(errors, "bid", spec.get("bid"), required=True)
    check_amount(errors, "daily_budget", spec.get("daily_budget"), required=False)
    check_amount(errors, "total_budget", spec.get("total_budget"), required=False)
    if errors.keys() & {"objective", "bid_model", "bid", "daily_budget", "total_budget"}:
        return
    objective, bid_model = spec["objective"], spec["bid_model"]
    allowed = OBJECTIVE_BID_MODELS[objective]
    if bid_model not in allowed:
        _add(
            errors,
            "bid_model",
            ERROR_BID_MODEL_OBJECTIVE.format(bid_model=bid_model, objective=objective, allowed=", ".join(allowed)),
        )
    bid = Decimal(spec["bid"])
    daily = None if spec.get("daily_budget") is None else Decimal(spec["daily_budget"])
    total = None if spec.get("total_budget") is None else Decimal(spec["total_budget"])
    if daily is None and total is None:
        _add(errors, "daily_budget", ERROR_BUDGET_REQUIRED)
        return
    if daily is not None and total is not None and daily > total:
        _add(errors, "daily_budget", ERROR_DAILY_EXCEEDS_TOTAL)
    unit, cost = _cost_of_one(bid_model, bid)
    for which, budget in (("daily", daily), ("total", total)):
        if budget is not None and cost > budget:
            _add(
                errors,
                "bid",
                ERROR_BID_EXCEEDS_BUDGET.format(unit=unit, cost=_fmt(cost), which=which, budget=_fmt(budget)),
            )


def check_campaign(
    spec: Mapping[str, Any],
    *,
    now: datetime,
    advertiser_currency: str,
    placement_keys: frozenset[str],
    end_changed: bool = True,
) -> Errors:
    """All rules for a complete campaign spec (API shape, typed values)."""
    errors: Errors = {}
    check_text(errors, "name", spec.get("name"), limit=200, blank_message=ERROR_NAME_BLANK)
    check_bid_and_budgets(errors, spec)
    currency = spec.get("currency")
    check_currency(errors, "currency", currency)
    if "currency" not in errors and currency != advertiser_currency:
        _add(errors, "currency", ERROR_CURRENCY_MISMATCH.format(currency=advertiser_currency))
    check_timezone(errors, "timezone", spec.get("timezone"))
    check_schedule(errors, spec.get("start"), spec.get("end"), now=now, end_changed=end_changed)
    check_choice(errors, "pacing", spec.get("pacing"), PACINGS)
    check_dayparts(errors, spec.get("dayparts"))
    check_frequency_caps(errors, spec.get("frequency_caps"))
    check_targeting(errors, spec.get("targeting"), placement_keys=placement_keys)
    return errors


def _check_template(errors: Errors, field: str, value: str) -> None:
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError:
        _add(errors, field, ERROR_VARIANT_TEMPLATE)
        return
    for _literal, slot, spec, conversion in parsed:
        if slot is None:
            continue
        if spec or conversion or not slot:
            _add(errors, field, ERROR_VARIANT_TEMPLATE)
        elif slot not in VARIANT_SLOTS:
            _add(
                errors,
                field,
                ERROR_VARIANT_SLOT.format(slot=slot, allowed=", ".join(f"{{{s}}}" for s in VARIANT_SLOTS)),
            )


def check_creative(spec: Mapping[str, Any]) -> Errors:
    errors: Errors = {}
    check_text(errors, "headline", spec.get("headline"), limit=120, blank_message=ERROR_HEADLINE_BLANK)
    body = spec.get("body")
    if body is not None:
        check_text(errors, "body", body, limit=500)
    check_url(errors, "image_url", spec.get("image_url"))
    check_url(errors, "landing_url", spec.get("landing_url"))
    product_id = spec.get("product_id")
    if product_id is not None:
        check_text(errors, "product_id", product_id, limit=128, blank_message=ERROR_REQUIRED)
    variants = spec.get("variants")
    if not isinstance(variants, list):
        _add(errors, "variants", ERROR_VARIANT_SHAPE)
    elif len(variants) > MAX_VARIANTS:
        _add(errors, "variants", ERROR_TOO_MANY.format(limit=MAX_VARIANTS))
    else:
        for i, v in enumerate(variants):
            path = f"variants.{i}"
            if not isinstance(v, Mapping) or "headline" not in v or set(v) - {"headline", "body"}:
                _add(errors, path, ERROR_VARIANT_SHAPE)
                continue
            check_text(errors, f"{path}.headline", v["headline"], limit=120, blank_message=ERROR_HEADLINE_BLANK)
            if "headline" not in {k.split(".")[-1] for k in errors if k.startswith(path)}:
                _check_template(errors, f"{path}.headline", v["headline"])
            if v.get("body") is not None:
                check_text(errors, f"{path}.body", v["body"], limit=500)
                if f"{path}.body" not in errors:
                    _check_template(errors, f"{path}.body", v["body"])
    return errors


def check_advertiser(spec: Mapping[str, Any]) -> Errors:
    errors: Errors = {}
    check_text(errors, "name", spec.get("name"), limit=200, blank_message=ERROR_NAME_BLANK)
    check_currency(errors, "currency", spec.get("currency"))
    check_timezone(errors, "timezone", spec.get("timezone"))
    return errors


def check_placement(spec: Mapping[str, Any]) -> Errors:
    errors: Errors = {}
    key = spec.get("key")
    if not isinstance(key, str) or not _PLACEMENT_KEY_RE.match(key):
        _add(errors, "key", ERROR_PLACEMENT_KEY)
    page_types = spec.get("page_types")
    if not isinstance(page_types, list) or not page_types:
        _add(errors, "page_types", ERROR_CHOICE.format(choices=", ".join(PAGE_TYPES)))
    else:
        for p in page_types:
            if p not in PAGE_TYPES:
                _add(errors, "page_types", ERROR_TARGETING_VALUE.format(value=p, choices=", ".join(PAGE_TYPES)))
    slots = spec.get("slots")
    if not isinstance(slots, int) or isinstance(slots, bool) or not 1 <= slots <= 20:
        _add(errors, "slots", ERROR_SLOTS)
    check_amount(errors, "floor_cpm", spec.get("floor_cpm"), required=True, allow_zero=True)
    return errors
