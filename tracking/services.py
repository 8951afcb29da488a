"""Writes of ad tracking: issuing tracking URLs for served ads, recording impressions and
clicks (once per token, billed through campaigns.budget_charge), attributing conversions.

CONTRACT (docs/contracts.md): `ServedAd` and `tracking_urls` are fixed (`consent` was
added, with a default); the tracking issue implements them. Design: ADR 0030 (tokens and
recording), ADR 0031 (attribution)."""

from __future__ import annotations

import functools
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from adplatform.eventlog.services import NewEvent, append_events
from campaigns import services as campaigns_services
from ranking.events import AD_CLICKED, AD_IMPRESSED, CONVERSION_ATTRIBUTED, decision_stream

from . import tokens
from .models import RecentImpression
from .tokens import TokenError, TokenExpiredError, TokenInvalidError

logger = logging.getLogger(__name__)

__all__ = [
    "ClientRequest",
    "ERROR_TOKEN_EXPIRED",
    "ERROR_TOKEN_INVALID",
    "ServedAd",
    "TokenError",
    "TokenExpiredError",
    "TokenInvalidError",
    "TrackOutcome",
    "ad_event_id",
    "click_record",
    "impression_record",
    "tracking_urls",
]

ERROR_TOKEN_INVALID = "Invalid tracking token."
ERROR_TOKEN_EXPIRED = "This tracking token has expired."

# Deterministic event ids (uuid5 in this namespace): the same token always names the same
# AdImpressed / AdClicked event, so a repeat, whichever way it arrives, is a no-op.
EVENT_ID_NAMESPACE = uuid.UUID("5b0a3c1e-7d2f-4a8e-9c61-2f0e6d4b8a17")
_SAFE_LANDING_SCHEMES = ("https://", "http://")


@dataclass(frozen=True)
class ServedAd:
    """One winner of a /rank decision, as the token carries it."""

    request_id: str
    user_id: str
    creative_id: int
    campaign_id: int
    advertiser_id: int
    placement: str
    position: int
    pricing_model: str  # "cpc" | "cpm" | "cpa"
    # clearing price in the bid unit: per click (cpc), per 1000 impressions (cpm), per conversion (cpa)
    price: Decimal
    currency: str
    landing_url: str
    served_at: datetime
    segment: str | None = None
    variant: int | None = None
    # False when the decision was made for a shopper without consent: the impression is
    # recorded and billed, but writes no per-user frequency row (SPEC §4 consent).
    consent: bool = True
    # the click model's raw p_click for this ad and the model that gave it: the live
    # calibration counts clicks against the sum of these (delivery.calibration, ADR 0062)
    p_click: float | None = None
    model_version: str | None = None


def _fields(ad: ServedAd, landing_url: str | None) -> list[Any]:
    return [
        ad.request_id,
        ad.user_id,
        ad.creative_id,
        ad.campaign_id,
        ad.advertiser_id,
        ad.placement,
        ad.position,
        ad.pricing_model,
        str(ad.price),
        ad.currency,
        round(ad.served_at.timestamp() * 1000),
        ad.segment,
        ad.variant,
        1 if ad.consent else 0,
        None if ad.p_click is None else round(ad.p_click, 6),
        ad.model_version,
        landing_url,  # last: the click token's only extra
    ]


def _served_ad(fields: list[Any]) -> ServedAd:
    try:
        p_click = model_version = None
        if len(fields) == 17:
            *fields, p_click, model_version, landing_url = fields
        else:  # a token issued before the calibration fields (15 fields)
            *fields, landing_url = fields
        (request_id, user_id, creative_id, campaign_id, advertiser_id, placement, position, pricing_model,
         price, currency, served_ms, segment, variant, consent) = fields  # fmt: skip
        return ServedAd(
            request_id=str(request_id),
            user_id=str(user_id),
            creative_id=int(creative_id),
            campaign_id=int(campaign_id),
            advertiser_id=int(advertiser_id),
            placement=str(placement),
            position=int(position),
            pricing_model=str(pricing_model),
            price=Decimal(price),
            currency=str(currency),
            landing_url=landing_url or "",
            served_at=datetime.fromtimestamp(served_ms / 1000, UTC),
            segment=segment,
            variant=variant,
            consent=bool(consent),
            p_click=None if p_click is None else float(p_click),
            model_version=None if model_version is None else str(model_version),
        )
    except (ValueError, TypeError, ArithmeticError):
        raise TokenInvalidError from None


def tracking_urls(*, ad: ServedAd) -> tuple[str, str]:
    """(impression_url, click_url): site-relative `/track/impression/<token>` and
    `/track/click/<token>`, each token signed, expiring, bound to request, creative and user.
    Only the click token carries the landing URL (the impression token stays short)."""
    secret = settings.TRACKING_SECRET
    expires_at = int(ad.served_at.timestamp()) + settings.TRACKING_TOKEN_TTL_SECONDS
    fields = _fields(ad, None)
    impression = tokens.sign(fields, kind=tokens.KIND_IMPRESSION, expires_at=expires_at, secret=secret)
    fields[-1] = ad.landing_url
    click = tokens.sign(fields, kind=tokens.KIND_CLICK, expires_at=expires_at, secret=secret)
    return f"/track/impression/{impression}", f"/track/click/{click}"


def served_ad_from_token(*, token: str, kind: str, now: datetime) -> ServedAd:
    """The served ad an authentic, unexpired token of `kind` ("i" | "c") carries; raises
    TokenInvalidError / TokenExpiredError."""
    fields = tokens.verify(
        token,
        kind=kind,
        now=now.timestamp(),
        secret=settings.TRACKING_SECRET,
        fallbacks=settings.TRACKING_SECRET_FALLBACKS,
    )
    ad = _served_ad(fields)
    if kind == tokens.KIND_CLICK and not ad.landing_url.startswith(_SAFE_LANDING_SCHEMES):
        raise TokenInvalidError  # never redirect anywhere but an http(s) landing page
    return ad


def ad_event_id(event_type: str, ad: ServedAd) -> uuid.UUID:
    """The id of the AdImpressed / AdClicked event of this served ad (one winner slot of one
    decision)."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}:{ad.request_id}:{ad.position}:{ad.creative_id}")


@dataclass(frozen=True)
class TrackOutcome:
    recorded: bool  # False: already recorded, or filtered; nothing was written
    charge: Decimal  # what this call charged the campaign
    landing_url: str  # the click's redirect target ("" for impressions)
    filtered: str | None = None  # invalid traffic: why nothing was counted (ADR 0032)


def _charge_campaign(campaign_id: int, amount: Decimal, at: datetime) -> Decimal:
    try:
        return campaigns_services.budget_charge(campaign_id=campaign_id, amount=amount, at=at).charged
    except campaigns_services.NotFoundError:
        # only our own signed tokens and clicks get here: a campaign gone from the read model
        # (a restore) must not turn a shopper's click into an error page
        logger.warning("tracking: campaign %s not found, event recorded without charge", campaign_id)
        return Decimal(0)


def _ad_event(
    event_type: str, ad: ServedAd, *, at: datetime, charge: Decimal, source: str, implied: bool = False
) -> NewEvent:
    meta: dict[str, Any] = {"source": source}
    if implied:
        meta["implied_by_click"] = True  # no beacon came before the click
    if not ad.consent:
        meta["consent"] = False
    return NewEvent(
        type=event_type,
        stream=decision_stream(ad.request_id),
        data={
            "request_id": ad.request_id,
            "creative_id": ad.creative_id,
            "campaign_id": ad.campaign_id,
            "advertiser_id": ad.advertiser_id,
            "placement": ad.placement,
            "position": ad.position,
            "pricing_model": ad.pricing_model,
            "price": str(ad.price),
            "charge": str(charge),
            "currency": ad.currency,
            "segment": ad.segment,
            "variant": ad.variant,
            "served_at": ad.served_at.isoformat(),
            **({"p_click": ad.p_click, "model_version": ad.model_version} if ad.p_click is not None else {}),
        },
        occurred_at=at,
        event_id=ad_event_id(event_type, ad),
        user_key=ad.user_id,
        meta=meta,
    )


def _existing(event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with connection.cursor() as cur:
        cur.execute("SELECT event_id FROM eventlog_event WHERE event_id = ANY(%s)", [event_ids])
        return {row[0] for row in cur.fetchall()}


class _RacedError(Exception):
    """A concurrent request stored one of our events first: undo our charge and look again."""


# meta.source of the ad events this app records; other sources (imported or generated
# history, ranking.services.ad_exposures_import) carry their own attribution.
TRACKED_SOURCES = frozenset({"beacon", "redirect", "reported"})


def frequency_rows_write(events: list[Any]) -> None:
    """Frequency read-model rows for AdImpressed events (inline here, and by the
    `tracking_frequency` projection on replay): consenting, non-erased shoppers only, and
    only impressions younger than TRACKING_FREQUENCY_RETENTION_SECONDS (older ones can
    never count for a cap: an import of years of history writes nothing)."""
    oldest = timezone.now() - timedelta(seconds=settings.TRACKING_FREQUENCY_RETENTION_SECONDS)
    rows = [
        RecentImpression(
            event_id=e.event_id,
            user_key=e.user_key,
            at=e.occurred_at,
            campaign_id=int(e.data["campaign_id"]),
            creative_id=int(e.data["creative_id"]),
        )
        for e in events
        if e.type == AD_IMPRESSED.name
        and e.user_key is not None
        and e.meta.get("consent") is not False
        and e.occurred_at >= oldest
    ]
    if rows:
        RecentImpression.objects.bulk_create(rows, ignore_conflicts=True)


def _record(ad: ServedAd, *, click: bool, at: datetime, source: str) -> TrackOutcome:
    """Append the ad's AdImpressed (and AdClicked), each once ever, charging the campaign in
    the same transaction: CPM on the impression (price / 1000), CPC on the click (price).
    A click whose impression beacon never came records the impression too (the click
    implies the view, ADR 0030), with the same id the beacon would have used."""
    impression_id = ad_event_id(AD_IMPRESSED.name, ad)
    click_id = ad_event_id(AD_CLICKED.name, ad)
    target = click_id if click else impression_id
    landing = ad.landing_url if click else ""
    for _attempt in range(3):
        with transaction.atomic():
            existing = _existing([impression_id, click_id] if click else [impression_id])
            if target in existing:
                return TrackOutcome(False, Decimal(0), landing)
            try:
                with transaction.atomic():  # savepoint: a lost race takes our charge back
                    events: list[NewEvent] = []
                    charged = Decimal(0)
                    if impression_id not in existing:
                        charge = Decimal(0)
                        if ad.pricing_model == "cpm":
                            charge = _charge_campaign(ad.campaign_id, ad.price / 1000, at)
                        charged += charge
                        events.append(
                            _ad_event(AD_IMPRESSED.name, ad, at=at, charge=charge, source=source, implied=click)
                        )
                    if click:
                        charge = Decimal(0)
                        if ad.pricing_model == "cpc":
                            charge = _charge_campaign(ad.campaign_id, ad.price, at)
                        charged += charge
                        events.append(_ad_event(AD_CLICKED.name, ad, at=at, charge=charge, source=source))
                    stored = append_events(events).stored
                    if stored != {e.event_id for e in events}:
                        raise _RacedError
                    frequency_rows_write(events)
                    return TrackOutcome(True, charged, landing)
            except _RacedError:
                continue
    return TrackOutcome(False, Decimal(0), landing)


FILTERED_DECLARED_BOT = "declared_bot"
FILTERED_PREFETCH = "prefetch"
_PREFETCH_HEADERS = ("sec-purpose", "purpose", "x-purpose", "x-moz")


@dataclass(frozen=True)
class ClientRequest:
    """What the beacon/redirect request says about its client (headers, lower-cased names)."""

    user_agent: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def _bot_pattern(pattern: str) -> re.Pattern[str] | None:
    return re.compile(pattern, re.IGNORECASE) if pattern else None


def invalid_traffic_reason(*, client: ClientRequest) -> str | None:
    """General invalid traffic (ADR 0032): a self-declared crawler/link-preview user agent
    (TRACKING_BOT_USER_AGENT_PATTERN) or a speculative prefetch/preview request is not a
    shopper seeing or clicking the ad, so it is neither counted nor billed."""
    bots = _bot_pattern(settings.TRACKING_BOT_USER_AGENT_PATTERN)
    if bots is not None and client.user_agent and bots.search(client.user_agent):
        return FILTERED_DECLARED_BOT
    for name in _PREFETCH_HEADERS:
        value = client.headers.get(name, "").lower()
        if "prefetch" in value or "preview" in value or "prerender" in value:
            return FILTERED_PREFETCH
    return None


def _filtered(ad: ServedAd, kind: str, reason: str) -> TrackOutcome:
    logger.info("tracking: %s of request %s filtered (%s)", kind, ad.request_id, reason)
    return TrackOutcome(False, Decimal(0), ad.landing_url if kind == tokens.KIND_CLICK else "", filtered=reason)


def impression_record(
    *, token: str, at: datetime | None = None, source: str = "beacon", client: ClientRequest | None = None
) -> TrackOutcome:
    """The impression beacon: record this token's AdImpressed once (billing CPM). Raises
    TokenInvalidError / TokenExpiredError and then records nothing; invalid traffic
    (`client`) records nothing either (`outcome.filtered` says why)."""
    at = at or timezone.now()
    ad = served_ad_from_token(token=token, kind=tokens.KIND_IMPRESSION, now=at)
    reason = invalid_traffic_reason(client=client) if client is not None else None
    if reason is not None:
        return _filtered(ad, tokens.KIND_IMPRESSION, reason)
    return _record(ad, click=False, at=at, source=source)


def click_record(
    *, token: str, at: datetime | None = None, source: str = "redirect", client: ClientRequest | None = None
) -> TrackOutcome:
    """The click redirect: record this token's AdClicked once (billing CPC) and return where
    to send the shopper. A repeat click, and invalid traffic, still get the landing URL."""
    at = at or timezone.now()
    ad = served_ad_from_token(token=token, kind=tokens.KIND_CLICK, now=at)
    reason = invalid_traffic_reason(client=client) if client is not None else None
    if reason is not None:
        return _filtered(ad, tokens.KIND_CLICK, reason)
    return _record(ad, click=True, at=at, source=source)


REJECT_INVALID = "invalid"
REJECT_EXPIRED = "expired"
REJECT_WRONG_USER = "wrong_user"


def reported_ad_event_record(
    *, click: bool, token: Any, user_key: str | None, occurred_at: datetime, recorded_at: datetime
) -> str | None:
    """An `ad_impression` / `ad_click` the storefront reported through POST /events: counted
    exactly like the beacon (same event ids, so once per token whichever arrives first).
    Expiry is judged at `recorded_at` (when we received the report), so a replay decides
    the same. Returns None when honoured (or already recorded), else the rejection reason."""
    kind = tokens.KIND_CLICK if click else tokens.KIND_IMPRESSION
    try:
        ad = served_ad_from_token(token=token, kind=kind, now=recorded_at)
    except TokenExpiredError:
        return REJECT_EXPIRED
    except TokenInvalidError:
        return REJECT_INVALID
    if user_key != ad.user_id:
        return REJECT_WRONG_USER  # a token is bound to its shopper
    at = min(max(occurred_at, ad.served_at), recorded_at)  # the client's clock, within reason
    _record(ad, click=click, at=at, source="reported")
    return None


def conversion_event_id(*, user_key: str, order_id: str) -> uuid.UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{CONVERSION_ATTRIBUTED.name}:{user_key}:{order_id}")


@dataclass(frozen=True)
class AttributedClick:
    """What the attribution projection knows of the click an order is attributed to."""

    event_id: uuid.UUID
    request_id: str
    creative_id: int
    campaign_id: int
    advertiser_id: int
    placement: str
    pricing_model: str
    price: Decimal
    segment: str | None


@dataclass(frozen=True)
class Conversion:
    """An order attributed to a click (decided by the attribution projection)."""

    user_key: str
    order_id: str
    ordered_at: datetime
    revenue: Decimal
    currency: str
    click: AttributedClick


def conversions_attribute(*, conversions: list[Conversion]) -> list[uuid.UUID]:
    """Append each order's ConversionAttributed (once ever: its id comes from the shopper and
    the order), charging CPA campaigns their clearing price per conversion, in the caller's
    transaction. Ids already in the log (a replay, an order re-sent) append and charge
    nothing. Returns the event ids, in order. The attribution projection is the only caller
    and runs under its advisory lock, so no concurrent writer appends these ids."""
    ids = [conversion_event_id(user_key=c.user_key, order_id=c.order_id) for c in conversions]
    if not conversions:
        return ids
    with transaction.atomic():
        existing = _existing(ids)
        events = []
        for event_id, c in zip(ids, conversions, strict=True):
            if event_id in existing:
                continue
            existing.add(event_id)  # the same order twice in one call: once
            charge = Decimal(0)
            if c.click.pricing_model == "cpa":
                charge = _charge_campaign(c.click.campaign_id, c.click.price, c.ordered_at)
            events.append(
                NewEvent(
                    type=CONVERSION_ATTRIBUTED.name,
                    stream=decision_stream(c.click.request_id),
                    data={
                        "request_id": c.click.request_id,
                        "creative_id": c.click.creative_id,
                        "campaign_id": c.click.campaign_id,
                        "advertiser_id": c.click.advertiser_id,
                        "placement": c.click.placement,
                        "order_id": c.order_id,
                        "revenue": str(c.revenue),
                        "charge": str(charge),
                        "currency": c.currency,
                        "segment": c.click.segment,
                        "click_event_id": str(c.click.event_id),
                        "pricing_model": c.click.pricing_model,
                    },
                    occurred_at=c.ordered_at,
                    event_id=event_id,
                    user_key=c.user_key,
                    meta={"source": "attribution"},
                )
            )
        if events:
            stored = append_events(events).stored
            if stored != {e.event_id for e in events}:
                # cannot happen under the projection lock; never keep a charge without its event
                raise RuntimeError("ConversionAttributed appended concurrently; batch rolled back")
    return ids


PRUNE_BATCH_ROWS = 10_000


def frequency_prune(*, before: datetime) -> int:
    """Delete frequency rows older than `before` (no cap looks back that far), in batches
    of short transactions so /rank never waits on a long delete. Returns rows deleted. A
    rebuild from the log brings old rows back; they are harmless (and pruned again)."""
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "DELETE FROM tracking_recent_impression WHERE event_id IN ("
                " SELECT event_id FROM tracking_recent_impression WHERE at < %s LIMIT %s)",
                [before, PRUNE_BATCH_ROWS],
            )
            n = cur.rowcount
        deleted += n
        if n < PRUNE_BATCH_ROWS:
            return deleted
