"""Writes of the campaigns app. Every change checks the rules (validation.py), appends
its events with the actor in `meta` and applies them to the read models in the same
transaction (projections.apply_state_events). Entry points (API, admin, commands) call
these functions and nothing else.

`advertiser_id=` on the update services scopes the call to one advertiser: another
advertiser's object is reported as not found, exactly like a missing one.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from adplatform.access.scopes import ADVERTISER as ADVERTISER_SCOPE
from adplatform.access.services import api_key_create
from adplatform.eventlog.services import NewEvent, append_events

from . import events as ev
from . import validation as rules
from .models import Advertiser, Campaign, Creative, Placement
from .projections import apply_state_events
from .validation import RuleViolationError

ERROR_ADVERTISER_NOT_FOUND = "Advertiser not found."
ERROR_CAMPAIGN_NOT_FOUND = "Campaign not found."
ERROR_CREATIVE_NOT_FOUND = "Creative not found."
ERROR_UNKNOWN_CAMPAIGN = "Unknown campaign."
ERROR_CAMPAIGN_ENDED = "The campaign has ended; move its end date to resume it."
ERROR_STATUS_CHANGE = "Set the status to 'active' or 'paused' (or use /pause and /resume)."
ERROR_REVIEW_DECISION = "The decision is 'approve' or 'reject'."
ERROR_REJECT_REASON = "Give a reason when rejecting a creative."
ERROR_CREATIVE_NOT_APPROVED = "Only an approved creative can be paused, and only a paused one resumed."
ERROR_READ_ONLY = "This field cannot be changed."

DEFAULT_CURRENCY = "EUR"
DEFAULT_TIMEZONE = "UTC"
AUTO_APPROVE_ACTOR = "system:auto-approve"

CAMPAIGN_FIELDS = (
    "name",
    "objective",
    "bid_model",
    "bid",
    "currency",
    "daily_budget",
    "total_budget",
    "start",
    "end",
    "timezone",
    "dayparts",
    "pacing",
    "frequency_caps",
    "targeting",
)
CREATIVE_FIELDS = ("headline", "body", "image_url", "landing_url", "product_id", "variants")
# Which event a changed field group writes (a PATCH writes one event per changed group).
_CAMPAIGN_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (ev.CAMPAIGN_RENAMED.name, ("name",)),
    (ev.CAMPAIGN_BUDGET_CHANGED.name, ("daily_budget", "total_budget")),
    (ev.CAMPAIGN_BID_CHANGED.name, ("bid_model", "bid")),
    (ev.CAMPAIGN_TARGETING_CHANGED.name, ("targeting",)),
    (ev.CAMPAIGN_SCHEDULE_CHANGED.name, ("start", "end", "timezone", "dayparts")),
    (ev.CAMPAIGN_DELIVERY_CHANGED.name, ("objective", "pacing", "frequency_caps")),
)


class NotFoundError(Exception):
    """The object does not exist or belongs to another advertiser."""


# --- JSON forms (what events carry) ----------------------------------------------------


def money_str(value: Decimal | str | int | None) -> str | None:
    """Decimal string with 2 to 4 decimals: "12.50", "0.0025"."""
    if value is None:
        return None
    d = Decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    text = format(d, "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{whole}.{frac}"


def _dt_str(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(zoneinfo.ZoneInfo("UTC")).isoformat()


def _json_campaign(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    for f in ("bid", "daily_budget", "total_budget"):
        out[f] = money_str(spec.get(f))
    for f in ("start", "end"):
        # whole seconds: what every client (and the admin's date/time widgets) can echo back
        value = spec.get(f)
        out[f] = _dt_str(value.replace(microsecond=0) if isinstance(value, datetime) else value)
    out["dayparts"] = [
        {"days": sorted(p["days"]), "start": p["start"], "end": p["end"]} for p in spec.get("dayparts") or []
    ]
    out["frequency_caps"] = [
        {"scope": c["scope"], "max": c["max"], "window_seconds": c["window_seconds"]}
        for c in spec.get("frequency_caps") or []
    ]
    out["targeting"] = rules.normalize_targeting(spec.get("targeting") or {})
    return out


def _campaign_spec(c: Campaign) -> dict[str, Any]:
    return {f: getattr(c, f) for f in CAMPAIGN_FIELDS}


def _meta(actor: str) -> dict[str, Any]:
    return {"actor": actor}


def _next_ids(table: str, n: int) -> list[int]:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, n])
        return sorted(int(row[0]) for row in cur.fetchall())


def _next_id(table: str) -> int:
    return _next_ids(table, 1)[0]


ErrorKey = Callable[[int, str], str]


def _plain_key(_index: int, field: str) -> str:
    return field


def _indexed_key(index: int, field: str) -> str:
    return f"{index}.{field}"


def _collect(errors: rules.Errors, found: rules.Errors, index: int, key: ErrorKey) -> None:
    for field_name, messages in found.items():
        errors.setdefault(key(index, field_name), []).extend(messages)


def _write(events: Sequence[NewEvent]) -> None:
    append_events(events)
    apply_state_events(events)


def _placement_keys() -> frozenset[str]:
    return frozenset(Placement.objects.values_list("key", flat=True))


# --- advertisers -------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvertiserInput:
    name: str
    currency: str | None = None
    timezone_name: str | None = None


def _advertisers_create(items: Sequence[AdvertiserInput], actor: str, key: ErrorKey) -> list[int]:
    specs = [
        {"name": a.name, "currency": a.currency or DEFAULT_CURRENCY, "timezone": a.timezone_name or DEFAULT_TIMEZONE}
        for a in items
    ]
    errors: rules.Errors = {}
    for i, spec in enumerate(specs):
        _collect(errors, rules.check_advertiser(spec), i, key)
    rules.raise_if(errors)
    with transaction.atomic():
        ids = _next_ids("campaigns_advertiser", len(specs))
        now = timezone.now()
        _write(
            [
                NewEvent(
                    type=ev.ADVERTISER_CREATED.name,
                    stream=ev.advertiser_stream(advertiser_id),
                    stream_version=1,
                    data={"advertiser_id": advertiser_id, **spec, "name": spec["name"].strip()},
                    occurred_at=now,
                    meta=_meta(actor),
                )
                for advertiser_id, spec in zip(ids, specs, strict=True)
            ]
        )
    return ids


def advertiser_create(*, name: str, currency: str | None = None, timezone_name: str | None = None, actor: str) -> int:
    return _advertisers_create([AdvertiserInput(name, currency, timezone_name)], actor, _plain_key)[0]


def advertisers_create(*, advertisers: Sequence[AdvertiserInput], actor: str) -> list[int]:
    """Many advertisers in one transaction (importers): the same rules and events as
    advertiser_create, all or nothing (RuleViolationError keyed "<index>.<field>")."""
    return _advertisers_create(advertisers, actor, _indexed_key) if advertisers else []


def advertiser_update(*, advertiser_id: int, changes: Mapping[str, Any], actor: str) -> bool:
    with transaction.atomic():
        adv = Advertiser.objects.select_for_update().filter(pk=advertiser_id).first()
        if adv is None:
            raise NotFoundError(ERROR_ADVERTISER_NOT_FOUND)
        if "currency" in changes and changes["currency"] != adv.currency:
            raise RuleViolationError({"currency": [ERROR_READ_ONLY]})
        spec = {"name": adv.name, "currency": adv.currency, "timezone": adv.timezone}
        spec.update({k: v for k, v in changes.items() if k in ("name", "timezone")})
        rules.raise_if(rules.check_advertiser(spec))
        if (spec["name"], spec["timezone"]) == (adv.name, adv.timezone):
            return False
        _write(
            [
                NewEvent(
                    type=ev.ADVERTISER_CHANGED.name,
                    stream=ev.advertiser_stream(adv.pk),
                    stream_version=adv.version + 1,
                    data={"advertiser_id": adv.pk, "name": spec["name"].strip(), "timezone": spec["timezone"]},
                    occurred_at=timezone.now(),
                    meta=_meta(actor),
                )
            ]
        )
    return True


# --- campaigns ---------------------------------------------------------------------------


def _campaign_defaults(spec: Mapping[str, Any], advertiser: Advertiser) -> dict[str, Any]:
    out: dict[str, Any] = {
        "currency": advertiser.currency,
        "timezone": advertiser.timezone,
        "dayparts": [],
        "pacing": "even",
        "frequency_caps": [],
        "targeting": {},
        "end": None,
        "daily_budget": None,
        "total_budget": None,
    }
    out.update({k: v for k, v in spec.items() if v is not None or k in ("end", "daily_budget", "total_budget")})
    return out


def campaign_validate(*, advertiser_id: int, spec: Mapping[str, Any], campaign_id: int | None = None) -> None:
    """Raise RuleViolationError if `spec` (complete for a new campaign, partial for a change)
    breaks a rule; used by the admin form to show errors next to fields."""
    adv = Advertiser.objects.filter(pk=advertiser_id).first()
    if adv is None:
        raise RuleViolationError({"advertiser": [ERROR_ADVERTISER_NOT_FOUND]})
    now = timezone.now()
    if campaign_id is None:
        merged = _campaign_defaults(spec, adv)
        rules.raise_if(
            rules.check_campaign(merged, now=now, advertiser_currency=adv.currency, placement_keys=_placement_keys())
        )
        return
    campaign = Campaign.objects.filter(pk=campaign_id, advertiser_id=advertiser_id).first()
    if campaign is None:
        raise NotFoundError(ERROR_CAMPAIGN_NOT_FOUND)
    _merged_update(campaign, spec, adv, now)


def _merged_update(campaign: Campaign, changes: Mapping[str, Any], adv: Advertiser, now: datetime) -> dict[str, Any]:
    current = _campaign_spec(campaign)
    errors: rules.Errors = {}
    for key in changes:
        if key not in CAMPAIGN_FIELDS:
            errors.setdefault(key, []).append(ERROR_READ_ONLY)
    if "currency" in changes and changes["currency"] != campaign.currency:
        errors.setdefault("currency", []).append(rules.ERROR_CURRENCY_IMMUTABLE)
    rules.raise_if(errors)
    merged = {**current, **{k: v for k, v in changes.items() if k in CAMPAIGN_FIELDS}}
    end_changed = "end" in changes and changes["end"] != campaign.end
    rules.raise_if(
        rules.check_campaign(
            merged, now=now, advertiser_currency=adv.currency, placement_keys=_placement_keys(), end_changed=end_changed
        )
    )
    return merged


@dataclass(frozen=True)
class CampaignInput:
    advertiser_id: int
    spec: Mapping[str, Any]
    status: str = "active"  # "active" (serves from its start) or "draft"


def _campaigns_create(items: Sequence[CampaignInput], actor: str, key: ErrorKey) -> list[int]:
    errors: rules.Errors = {}
    with transaction.atomic():
        advertisers = Advertiser.objects.in_bulk({c.advertiser_id for c in items})
        placement_keys = _placement_keys()
        now = timezone.now()
        datas: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            adv = advertisers.get(item.advertiser_id)
            if adv is None:
                if key is _plain_key:
                    raise NotFoundError(ERROR_ADVERTISER_NOT_FOUND)
                _collect(errors, {"advertiser_id": [ERROR_ADVERTISER_NOT_FOUND]}, i, key)
                continue
            if item.status not in ("active", "draft"):
                _collect(errors, {"status": [rules.ERROR_CHOICE.format(choices="active, draft")]}, i, key)
                continue
            merged = _campaign_defaults(item.spec, adv)
            unknown = set(merged) - set(CAMPAIGN_FIELDS)
            if unknown:
                _collect(errors, {k: [ERROR_READ_ONLY] for k in sorted(unknown)}, i, key)
                continue
            found = rules.check_campaign(
                merged, now=now, advertiser_currency=adv.currency, placement_keys=placement_keys
            )
            _collect(errors, found, i, key)
            data = {"advertiser_id": adv.pk, **_json_campaign(merged), "status": item.status}
            data["name"] = data["name"].strip()
            datas.append(data)
        rules.raise_if(errors)
        ids = _next_ids("campaigns_campaign", len(datas))
        _write(
            [
                NewEvent(
                    type=ev.CAMPAIGN_CREATED.name,
                    stream=ev.campaign_stream(campaign_id),
                    stream_version=1,
                    data={"campaign_id": campaign_id, **data},
                    occurred_at=now,
                    meta=_meta(actor),
                )
                for campaign_id, data in zip(ids, datas, strict=True)
            ]
        )
    return ids


def campaign_create(*, advertiser_id: int, spec: Mapping[str, Any], actor: str, status: str = "active") -> int:
    """Create a campaign. `spec` has the API fields; currency/timezone default to the
    advertiser's. `status` is "active" (serves from its start) or "draft"."""
    if status not in ("active", "draft"):
        raise RuleViolationError({"status": [rules.ERROR_CHOICE.format(choices="active, draft")]})
    return _campaigns_create([CampaignInput(advertiser_id, spec, status)], actor, _plain_key)[0]


def campaigns_create(*, campaigns: Sequence[CampaignInput], actor: str) -> list[int]:
    """Many campaigns in one transaction (importers): the same rules and events as
    campaign_create, all or nothing (RuleViolationError keyed "<index>.<field>"; an unknown
    advertiser is "<index>.advertiser_id")."""
    return _campaigns_create(campaigns, actor, _indexed_key) if campaigns else []


def _locked_campaign(campaign_id: int, advertiser_id: int | None) -> Campaign:
    qs = Campaign.objects.select_for_update().filter(pk=campaign_id)
    if advertiser_id is not None:
        qs = qs.filter(advertiser_id=advertiser_id)
    campaign = qs.first()
    if campaign is None:
        raise NotFoundError(ERROR_CAMPAIGN_NOT_FOUND)
    return campaign


def campaign_update(
    *, campaign_id: int, changes: Mapping[str, Any], actor: str, advertiser_id: int | None = None
) -> int:
    """Apply a partial change; writes one event per changed field group (and a pause or
    resume for "status"). Returns how many events were written (0: nothing changed)."""
    changes = dict(changes)
    status = changes.pop("status", None)
    if status is not None and status not in ("active", "paused"):
        raise RuleViolationError({"status": [ERROR_STATUS_CHANGE]})
    with transaction.atomic():
        campaign = _locked_campaign(campaign_id, advertiser_id)
        adv = Advertiser.objects.get(pk=campaign.advertiser_id)
        now = timezone.now()
        merged = _merged_update(campaign, changes, adv, now)
        old_json, new_json = _json_campaign(_campaign_spec(campaign)), _json_campaign(merged)
        events: list[NewEvent] = []
        version = campaign.version
        for event_type, fields in _CAMPAIGN_GROUPS:
            if any(old_json[f] != new_json[f] for f in fields):
                version += 1
                data = {"campaign_id": campaign.pk, **{f: new_json[f] for f in fields}}
                if "name" in data:
                    data["name"] = data["name"].strip()
                events.append(
                    NewEvent(
                        type=event_type,
                        stream=ev.campaign_stream(campaign.pk),
                        stream_version=version,
                        data=data,
                        occurred_at=now,
                        meta=_meta(actor),
                    )
                )
        if status is not None:
            ends = merged["end"]
            status_event = _status_event(campaign.status, status, ends, now)
            if status_event is not None:
                version += 1
                events.append(
                    NewEvent(
                        type=status_event,
                        stream=ev.campaign_stream(campaign.pk),
                        stream_version=version,
                        data={"campaign_id": campaign.pk, "status": status},
                        occurred_at=now,
                        meta=_meta(actor),
                    )
                )
        _write(events)
    return len(events)


def _status_event(current: str, target: str, end: datetime | None, now: datetime) -> str | None:
    if current == target:
        return None
    if target == "paused":
        return ev.CAMPAIGN_PAUSED.name if current == "active" else None
    if end is not None and end <= now:
        raise RuleViolationError({"status": [ERROR_CAMPAIGN_ENDED]})
    return ev.CAMPAIGN_ACTIVATED.name if current == "draft" else ev.CAMPAIGN_RESUMED.name


def _campaign_set_status(campaign_id: int, target: str, actor: str, advertiser_id: int | None) -> bool:
    with transaction.atomic():
        campaign = _locked_campaign(campaign_id, advertiser_id)
        now = timezone.now()
        event_type = _status_event(campaign.status, target, campaign.end, now)
        if event_type is None:
            return False
        _write(
            [
                NewEvent(
                    type=event_type,
                    stream=ev.campaign_stream(campaign.pk),
                    stream_version=campaign.version + 1,
                    data={"campaign_id": campaign.pk, "status": target},
                    occurred_at=now,
                    meta=_meta(actor),
                )
            ]
        )
    return True


def campaign_pause(*, campaign_id: int, actor: str, advertiser_id: int | None = None) -> bool:
    """Pause an active campaign; pausing a paused (or draft) one is a no-op (returns False)."""
    return _campaign_set_status(campaign_id, "paused", actor, advertiser_id)


def campaign_resume(*, campaign_id: int, actor: str, advertiser_id: int | None = None) -> bool:
    """Resume a paused (or activate a draft) campaign; an active one is a no-op."""
    return _campaign_set_status(campaign_id, "active", actor, advertiser_id)


# --- creatives ---------------------------------------------------------------------------


def _creative_json(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "headline": (spec.get("headline") or "").strip(),
        "body": spec.get("body") or "",
        "image_url": spec.get("image_url"),
        "landing_url": spec.get("landing_url"),
        "product_id": spec.get("product_id") or None,
        "variants": [{"headline": v["headline"], "body": v.get("body")} for v in spec.get("variants") or []],
    }


def _auto_approve_event(creative_id: int, version: int, now: datetime) -> NewEvent:
    return NewEvent(
        type=ev.CREATIVE_APPROVED.name,
        stream=ev.creative_stream(creative_id),
        stream_version=version,
        data={"creative_id": creative_id, "status": "approved", "review_reason": "auto-approved"},
        occurred_at=now,
        meta=_meta(AUTO_APPROVE_ACTOR),
    )


def creative_validate(*, spec: Mapping[str, Any]) -> None:
    spec = {"variants": [], **spec}
    rules.raise_if(rules.check_creative(spec))


@dataclass(frozen=True)
class CreativeInput:
    advertiser_id: int
    campaign_id: Any  # must be an int of one of the advertiser's campaigns
    spec: Mapping[str, Any]


def _creatives_create(items: Sequence[CreativeInput], actor: str, key: ErrorKey) -> list[int]:
    errors: rules.Errors = {}
    with transaction.atomic():
        wanted = {
            c.campaign_id for c in items if isinstance(c.campaign_id, int) and not isinstance(c.campaign_id, bool)
        }
        found_campaigns = Campaign.objects.in_bulk(wanted)
        datas: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            spec = {"variants": [], **item.spec}
            found = rules.check_creative(spec)
            for unknown in sorted(set(spec) - set(CREATIVE_FIELDS)):
                found.setdefault(unknown, []).append(ERROR_READ_ONLY)
            campaign = found_campaigns.get(item.campaign_id) if item.campaign_id in wanted else None
            if campaign is None or campaign.advertiser_id != item.advertiser_id:
                found.setdefault("campaign_id", []).append(ERROR_UNKNOWN_CAMPAIGN)
            _collect(errors, found, i, key)
            if campaign is not None:
                datas.append(
                    {
                        "campaign_id": campaign.pk,
                        "advertiser_id": campaign.advertiser_id,
                        **_creative_json(spec),
                        "status": "pending_review",
                        "review_reason": "",
                    }
                )
        rules.raise_if(errors)
        now = timezone.now()
        events: list[NewEvent] = []
        ids = _next_ids("campaigns_creative", len(datas))
        for creative_id, data in zip(ids, datas, strict=True):
            events.append(
                NewEvent(
                    type=ev.CREATIVE_CREATED.name,
                    stream=ev.creative_stream(creative_id),
                    stream_version=1,
                    data={"creative_id": creative_id, **data},
                    occurred_at=now,
                    meta=_meta(actor),
                )
            )
            if settings.AUTO_APPROVE_CREATIVES:
                events.append(_auto_approve_event(creative_id, 2, now))
        _write(events)
    return ids


def creative_create(*, advertiser_id: int, campaign_id: Any, spec: Mapping[str, Any], actor: str) -> int:
    """New creatives wait for review unless settings.AUTO_APPROVE_CREATIVES is on (then a
    CreativeApproved by the system follows in the same transaction)."""
    return _creatives_create([CreativeInput(advertiser_id, campaign_id, spec)], actor, _plain_key)[0]


def creatives_create(*, creatives: Sequence[CreativeInput], actor: str) -> list[int]:
    """Many creatives in one transaction (importers, seeding): the same rules and events as
    creative_create, all or nothing (RuleViolationError keyed "<index>.<field>")."""
    return _creatives_create(creatives, actor, _indexed_key) if creatives else []


def _locked_creative(creative_id: int, advertiser_id: int | None) -> Creative:
    qs = Creative.objects.select_for_update().filter(pk=creative_id)
    if advertiser_id is not None:
        qs = qs.filter(advertiser_id=advertiser_id)
    creative = qs.first()
    if creative is None:
        raise NotFoundError(ERROR_CREATIVE_NOT_FOUND)
    return creative


def creative_update(
    *, creative_id: int, changes: Mapping[str, Any], actor: str, advertiser_id: int | None = None
) -> int:
    """Change a creative's content: it goes back to review (pending_review). Returns the
    number of events written (0 when nothing changed)."""
    errors: rules.Errors = {}
    for key in changes:
        if key not in CREATIVE_FIELDS:
            errors.setdefault(key, []).append(ERROR_READ_ONLY)
    rules.raise_if(errors)
    with transaction.atomic():
        creative = _locked_creative(creative_id, advertiser_id)
        current = {f: getattr(creative, f) for f in CREATIVE_FIELDS}
        merged = {**current, **changes}
        rules.raise_if(rules.check_creative(merged))
        old_json, new_json = _creative_json(current), _creative_json(merged)
        if old_json == new_json:
            return 0
        now = timezone.now()
        events = [
            NewEvent(
                type=ev.CREATIVE_CHANGED.name,
                stream=ev.creative_stream(creative.pk),
                stream_version=creative.version + 1,
                data={"creative_id": creative.pk, **new_json, "status": "pending_review", "review_reason": ""},
                occurred_at=now,
                meta=_meta(actor),
            )
        ]
        if settings.AUTO_APPROVE_CREATIVES:
            events.append(_auto_approve_event(creative.pk, creative.version + 2, now))
        _write(events)
    return len(events)


def creative_review(*, creative_id: int, decision: str, reason: str = "", actor: str) -> bool:
    """Approve or reject (operators). Re-deciding the same way is a no-op (returns False)."""
    reason = (reason or "").strip()
    if decision not in ("approve", "reject"):
        raise RuleViolationError({"decision": [ERROR_REVIEW_DECISION]})
    if decision == "reject" and not reason:
        raise RuleViolationError({"reason": [ERROR_REJECT_REASON]})
    if len(reason) > 500:
        raise RuleViolationError({"reason": [rules.ERROR_TOO_LONG.format(limit=500)]})
    status = "approved" if decision == "approve" else "rejected"
    with transaction.atomic():
        creative = _locked_creative(creative_id, None)
        if creative.status == status and creative.review_reason == reason:
            return False
        _write(
            [
                NewEvent(
                    type=ev.CREATIVE_APPROVED.name if status == "approved" else ev.CREATIVE_REJECTED.name,
                    stream=ev.creative_stream(creative.pk),
                    stream_version=creative.version + 1,
                    data={"creative_id": creative.pk, "status": status, "review_reason": reason},
                    occurred_at=timezone.now(),
                    meta=_meta(actor),
                )
            ]
        )
    return True


def creative_set_paused(*, creative_id: int, paused: bool, actor: str, advertiser_id: int | None = None) -> bool:
    """Advertisers pause an approved creative or resume a paused one."""
    with transaction.atomic():
        creative = _locked_creative(creative_id, advertiser_id)
        target = "paused" if paused else "approved"
        if creative.status == target:
            return False
        if creative.status != ("approved" if paused else "paused"):
            raise RuleViolationError({"status": [ERROR_CREATIVE_NOT_APPROVED]})
        _write(
            [
                NewEvent(
                    type=ev.CREATIVE_PAUSED.name if paused else ev.CREATIVE_RESUMED.name,
                    stream=ev.creative_stream(creative.pk),
                    stream_version=creative.version + 1,
                    data={"creative_id": creative.pk, "status": target, "review_reason": creative.review_reason},
                    occurred_at=timezone.now(),
                    meta=_meta(actor),
                )
            ]
        )
    return True


# --- placements --------------------------------------------------------------------------


def placement_upsert(*, spec: Mapping[str, Any], actor: str) -> tuple[int, bool]:
    """Create the placement with this key, or change it. Returns (id, created)."""
    rules.raise_if(rules.check_placement(spec))
    data = {
        "key": spec["key"],
        "page_types": list(dict.fromkeys(spec["page_types"])),
        "slots": spec["slots"],
        "floor_cpm": money_str(spec["floor_cpm"]),
    }
    with transaction.atomic():
        # Serialise creators of the same key: the stream version makes the loser fail.
        placement = Placement.objects.select_for_update().filter(key=data["key"]).first()
        now = timezone.now()
        if placement is None:
            placement_id = _next_id("campaigns_placement")
            event = NewEvent(
                type=ev.PLACEMENT_CREATED.name,
                stream=ev.placement_stream(data["key"]),
                stream_version=1,
                data={"placement_id": placement_id, **data},
                occurred_at=now,
                meta=_meta(actor),
            )
            _write([event])
            return placement_id, True
        current = {
            "key": placement.key,
            "page_types": placement.page_types,
            "slots": placement.slots,
            "floor_cpm": money_str(placement.floor_cpm),
        }
        if current != data:
            _write(
                [
                    NewEvent(
                        type=ev.PLACEMENT_CHANGED.name,
                        stream=ev.placement_stream(data["key"]),
                        stream_version=placement.version + 1,
                        data={"placement_id": placement.pk, **data},
                        occurred_at=now,
                        meta=_meta(actor),
                    )
                ]
            )
        return placement.pk, False


# --- budget ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeOutcome:
    charged: Decimal
    daily_spent: Decimal
    total_spent: Decimal
    exhausted: bool


# One round trip on the hot path. The day row is updated (and locked) first, the lifetime
# row second, the same order for every caller, so charges cannot deadlock each other. Each
# UPDATE applies only while spend-before < budget; a waiting UPDATE re-checks that on the
# newest row version once the lock holder commits (READ COMMITTED), so a budget is exceeded
# by less than one charge. The lifetime UPDATE runs only if the day UPDATE matched.
_CHARGE_SQL = """
WITH d AS (
    UPDATE campaigns_spend_day SET spent = spent + %(amount)s
    WHERE campaign_id = %(campaign)s AND day = %(day)s
      AND (%(daily)s::numeric IS NULL OR spent < %(daily)s::numeric)
    RETURNING spent
), t AS (
    UPDATE campaigns_spend_total s SET spent = s.spent + %(amount)s
    FROM d
    WHERE s.campaign_id = %(campaign)s AND (%(total)s::numeric IS NULL OR s.spent < %(total)s::numeric)
    RETURNING s.spent
)
SELECT (SELECT spent FROM d), (SELECT spent FROM t)
"""
_ENSURE_ROWS_SQL = """
WITH t AS (
    INSERT INTO campaigns_spend_total (campaign_id, spent) VALUES (%(campaign)s, 0)
    ON CONFLICT DO NOTHING RETURNING 1
), d AS (
    INSERT INTO campaigns_spend_day (campaign_id, day, spent) VALUES (%(campaign)s, %(day)s, 0)
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM d)
"""


def _spent(cur: Any, campaign_id: int, day: Any) -> tuple[Decimal, Decimal]:
    cur.execute(
        "SELECT (SELECT spent FROM campaigns_spend_day WHERE campaign_id = %s AND day = %s),"
        " (SELECT spent FROM campaigns_spend_total WHERE campaign_id = %s)",
        [campaign_id, day, campaign_id],
    )
    daily, total = cur.fetchone()
    return Decimal(daily or 0), Decimal(total or 0)


def budget_charge(*, campaign_id: int, amount: Decimal, at: datetime) -> ChargeOutcome:
    """Charge `amount` to the campaign's spend for its campaign-local day of `at` and to its
    lifetime spend, only while spend-before < budget for both (ADR 0012). Call inside the
    caller's transaction.atomic(), the one that appends the charged ad event. Returns
    charged == 0 and exhausted == True when a budget was already used up."""
    with connection.cursor() as cur:  # plain SQL: this runs once per billable ad event
        cur.execute("SELECT timezone, daily_budget, total_budget FROM campaigns_campaign WHERE id = %s", [campaign_id])
        row = cur.fetchone()
    if row is None:
        raise NotFoundError(ERROR_CAMPAIGN_NOT_FOUND)
    tz, daily_budget, total_budget = row
    day = at.astimezone(zoneinfo.ZoneInfo(tz)).date()
    amount = Decimal(amount)
    params: dict[str, Any] = {
        "amount": amount,
        "campaign": campaign_id,
        "day": day,
        "daily": daily_budget,
        "total": total_budget,
    }
    with transaction.atomic(savepoint=False), connection.cursor() as cur:
        if amount > 0:
            for attempt in range(2):
                cur.execute(_CHARGE_SQL, params)
                daily_spent, total_spent = cur.fetchone()
                if daily_spent is not None and total_spent is not None:
                    daily_spent, total_spent = Decimal(daily_spent), Decimal(total_spent)
                    exhausted = _exhausted(daily_spent, total_spent, daily_budget, total_budget)
                    return ChargeOutcome(amount, daily_spent, total_spent, exhausted)
                if daily_spent is not None:
                    # the day had room but the lifetime did not: take the day charge back (row still locked)
                    cur.execute(
                        "UPDATE campaigns_spend_day SET spent = spent - %(amount)s"
                        " WHERE campaign_id = %(campaign)s AND day = %(day)s",
                        params,
                    )
                if attempt:
                    break  # the rows exist and a budget refused the charge: it is used up
                # a missing row (the campaign's first charge of the day or ever): create it and
                # charge again — also when a concurrent first charge created it meanwhile (its
                # INSERT made ours wait for its commit and do nothing): then the rows exist too
                cur.execute(_ENSURE_ROWS_SQL, params)
        daily_spent, total_spent = _spent(cur, campaign_id, day)
        exhausted = amount > 0 or _exhausted(daily_spent, total_spent, daily_budget, total_budget)
        return ChargeOutcome(Decimal(0), daily_spent, total_spent, exhausted)


def _exhausted(
    daily_spent: Decimal, total_spent: Decimal, daily_budget: Decimal | None, total_budget: Decimal | None
) -> bool:
    return (daily_budget is not None and daily_spent >= daily_budget) or (
        total_budget is not None and total_spent >= total_budget
    )


# --- onboarding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OnboardedAdvertiser:
    advertiser_id: int
    name: str
    token: str  # the advertiser API token, shown once


def advertiser_onboard(
    *, name: str, currency: str | None = None, timezone_name: str | None = None, actor: str
) -> OnboardedAdvertiser:
    """Create an advertiser and its first advertiser-scoped API token, atomically."""
    with transaction.atomic():
        advertiser_id = advertiser_create(name=name, currency=currency, timezone_name=timezone_name, actor=actor)
        issued = api_key_create(
            scopes=[ADVERTISER_SCOPE], name=f"advertiser {advertiser_id}", advertiser_id=advertiser_id
        )
    return OnboardedAdvertiser(advertiser_id=advertiser_id, name=name.strip(), token=issued.key)
