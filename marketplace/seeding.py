"""Load a synthetic world and its generated history into the platform, through the other
apps' services only (catalog, campaigns, behaviour, ranking): every fact becomes an
event in the log exactly as if a shop and its advertisers had produced it.

Idempotent: products and placements are upserts, advertisers/campaigns/creatives are
created once (their platform ids are recorded in `SeededObject` in the same transaction),
behaviour events and ad exposures carry ids derived from the world's name, and history is
loaded day by day with a high-water mark (`SeededWorld.days_loaded`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from adplatform.access import scopes
from adplatform.access.services import api_key_create
from behaviour.services import events_ingest
from campaigns import services as campaigns
from catalog.services import ProductInput, products_upsert
from ranking.services import AdExposure, ad_exposures_import

from .models import SeededObject, SeededWorld
from .world import CURRENCY, PLACEMENTS, World, build_world, generate_history, preset

ACTOR = "marketplace-seed"
SOURCE = "marketplace-seed"
_EVENT_NS = uuid.UUID("0b7f0d52-5d0e-4f7e-8f43-3a3a6c1f9e21")
EVENT_BATCH = 1000
EXPOSURE_BATCH = 2000
PRODUCT_BATCH = 500
HISTORY_MARGIN = timedelta(hours=2)
OBJECT_BATCH = 500  # advertisers / campaigns / creatives per transaction

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class SeedResult:
    world: str
    products_created: int
    advertisers_created: int
    campaigns_created: int
    creatives_created: int
    events_accepted: int
    events_duplicate: int
    exposures_stored: int
    days_loaded: int
    manifest_path: str


def world_name(size: str, seed: int, days: int | None = None) -> str:
    return f"{size}-{seed}" if days is None else f"{size}-{seed}-d{days}"


def manifest_path(name: str) -> Path:
    return Path(settings.VAR_DIR) / "marketplace" / f"{name}.json"


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _world_row(size: str, seed: int, days: int, now: datetime, name: str) -> SeededWorld:
    # The timeline is anchored once, at the first seeding, so that the history ends
    # yesterday (recent enough for profiles and models) and re-runs replay the same times.
    # Late sessions spill minutes past their day's end: anchored on the day of two hours
    # ago, the history never reaches into the future (just after midnight UTC it did, and
    # ingestion rejected those events).
    start = _day_start(now - HISTORY_MARGIN) - timedelta(days=days)
    row, _ = SeededWorld.objects.get_or_create(name=name, defaults={"size": size, "seed": seed, "start": start})
    return row


def seeded_world(
    *, size: str, seed: int, days: int | None = None, now: datetime | None = None
) -> tuple[SeededWorld, World]:
    """The world for (size, seed[, days]), with the timeline its first seeding anchored."""
    cfg = preset(size, seed=seed) if days is None else preset(size, seed=seed, days=days)
    row = _world_row(size, seed, cfg.days, now or datetime.now(UTC), world_name(size, seed, days))
    return row, build_world(replace(cfg, start=row.start))


def _mapped(world: SeededWorld, kind: str) -> dict[str, int]:
    return dict(SeededObject.objects.filter(world=world, kind=kind).values_list("key", "platform_id"))


def world_product_inputs(world: World) -> list[ProductInput]:
    """The world's catalogue as catalog upserts (shared by seeding, benches and tests)."""
    return [
        ProductInput(
            product_id=p.product_id,
            title=p.title,
            category_path=tuple(p.category_path),
            brand=p.brand,
            price=Decimal(p.price),
            currency=p.currency,
            url=p.url,
            image_url=p.image_url,
            in_stock=p.in_stock,
        )
        for p in world.products
    ]


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _seed_catalogue(world: World, progress: Progress) -> int:
    for key, (page_type, slots, floor) in PLACEMENTS.items():
        campaigns.placement_upsert(
            spec={"key": key, "page_types": [page_type], "slots": slots, "floor_cpm": Decimal(floor)}, actor=ACTOR
        )
    created = 0
    inputs = world_product_inputs(world)
    done = 0
    for chunk in _chunks(inputs, PRODUCT_BATCH):
        created += products_upsert(products=chunk, actor=ACTOR).created
        done += len(chunk)
        progress("products", done, len(inputs))
    return created


def _seed_advertisers(
    row: SeededWorld, world: World, tokens: dict[str, str], progress: Progress
) -> tuple[int, int, int]:
    """Advertisers, campaigns and creatives through the campaigns bulk services, one
    transaction per chunk together with their id-map rows (a crash re-creates nothing)."""
    adv_ids = _mapped(row, "advertiser")
    camp_ids = _mapped(row, "campaign")
    cr_ids = _mapped(row, "creative")
    made = [0, 0, 0]
    total = len(world.advertisers) + len(world.campaigns) + len(world.creatives)
    done = 0

    def record(kind: str, keys: Sequence[str], ids: Sequence[int], into: dict[str, int]) -> None:
        SeededObject.objects.bulk_create(
            [SeededObject(world=row, kind=kind, key=k, platform_id=i) for k, i in zip(keys, ids, strict=True)]
        )
        into.update(zip(keys, ids, strict=True))

    for chunk in _chunks(world.advertisers, OBJECT_BATCH):
        new = [a for a in chunk if a.key not in adv_ids]
        with transaction.atomic():
            ids = campaigns.advertisers_create(
                advertisers=[campaigns.AdvertiserInput(a.name, CURRENCY, "UTC") for a in new], actor=ACTOR
            )
            record("advertiser", [a.key for a in new], ids, adv_ids)
        made[0] += len(ids)
        for adv in chunk:
            if adv.key not in tokens:
                # advertiser tokens are shown once: the manifest is where the simulator finds them
                tokens[adv.key] = api_key_create(
                    scopes=[scopes.ADVERTISER], name=f"{row.name} {adv.key}", advertiser_id=adv_ids[adv.key]
                ).key
        done += len(chunk)
        progress("advertisers+campaigns+creatives", done, total)
    for chunk in _chunks(world.campaigns, OBJECT_BATCH):
        new_camps = [c for c in chunk if c.key not in camp_ids]
        inputs = [
            campaigns.CampaignInput(
                adv_ids[camp.advertiser],
                {
                    "name": camp.name,
                    "objective": camp.objective,
                    "bid_model": camp.bid_model,
                    "bid": Decimal(camp.bid),
                    "daily_budget": Decimal(camp.daily_budget),
                    "total_budget": Decimal(camp.total_budget),
                    "currency": CURRENCY,
                    "timezone": "UTC",
                    "start": row.start,
                    "end": None,
                    "pacing": "even",
                    "targeting": camp.targeting,
                },
            )
            for camp in new_camps
        ]
        with transaction.atomic():
            ids = campaigns.campaigns_create(campaigns=inputs, actor=ACTOR)
            record("campaign", [c.key for c in new_camps], ids, camp_ids)
        made[1] += len(ids)
        done += len(chunk)
        progress("advertisers+campaigns+creatives", done, total)
    camp_adv = {c.key: adv_ids[c.advertiser] for c in world.campaigns}
    for chunk in _chunks(world.creatives, OBJECT_BATCH):
        new_crs = [c for c in chunk if c.key not in cr_ids]
        inputs_cr = [
            campaigns.CreativeInput(
                camp_adv[cr.campaign],
                camp_ids[cr.campaign],
                {
                    "headline": cr.headline,
                    "body": cr.body,
                    "image_url": cr.image_url,
                    "landing_url": cr.landing_url,
                    "product_id": cr.product_id,
                    "variants": [dict(v) for v in cr.variants],
                },
            )
            for cr in new_crs
        ]
        with transaction.atomic():
            ids = campaigns.creatives_create(creatives=inputs_cr, actor=ACTOR)
            if not settings.AUTO_APPROVE_CREATIVES:
                for crid in ids:
                    campaigns.creative_review(creative_id=crid, decision="approve", actor=ACTOR)
            record("creative", [c.key for c in new_crs], ids, cr_ids)
        made[2] += len(ids)
        done += len(chunk)
        progress("advertisers+campaigns+creatives", done, total)
    return made[0], made[1], made[2]


def _event(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    # world event ids depend on the seed only: make them unique per world (size + seed)
    return {**raw, "event_id": str(uuid.uuid5(_EVENT_NS, f"{name}/{raw['event_id']}"))}


def _seed_history(row: SeededWorld, world: World, progress: Progress) -> tuple[int, int, int]:
    if row.days_loaded >= world.cfg.days:
        progress("history", world.cfg.days, world.cfg.days)
        return 0, 0, 0
    adv = _mapped(row, "advertiser")

    def loaded(day: int) -> None:
        SeededWorld.objects.filter(pk=row.pk).update(days_loaded=day + 1)
        progress("history", day + 1, world.cfg.days)

    return history_import(
        world,
        name=row.name,
        campaign_ids=_mapped(row, "campaign"),
        creative_ids=_mapped(row, "creative"),
        campaign_advertisers={c.key: adv[c.advertiser] for c in world.campaigns},
        first_day=row.days_loaded,
        on_day=loaded,
    )


def history_import(
    world: World,
    *,
    name: str,
    campaign_ids: dict[str, int],
    creative_ids: dict[str, int],
    campaign_advertisers: dict[str, int],
    first_day: int = 0,
    days: int | None = None,
    on_day: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Ingest the world's generated history (behaviour events through `events_ingest`,
    ad exposures through `ad_exposures_import`) from `first_day`, with the platform ids
    its campaigns and creatives were created under. Returns (accepted, duplicates,
    exposures stored)."""
    accepted = duplicates = stored = 0
    for day in generate_history(world, days=days):
        if day.day < first_day:
            continue
        for chunk in _chunks(day.events, EVENT_BATCH):
            res = events_ingest(raw_events=[_event(name, e) for e in chunk], source=SOURCE)
            if res.rejected:
                raise ValueError(f"generated events rejected: {res.rejected[:3]}")
            accepted += res.accepted
            duplicates += res.duplicates
        exposures = []
        for x in day.exposures:
            c = world.creatives[x.creative_idx]
            exposures.append(
                AdExposure(
                    exposure_key=f"{name}:{x.exposure_key}",
                    user_id=world.shoppers[x.user_idx].user_id,
                    at=x.at,
                    creative_id=creative_ids[c.key],
                    campaign_id=campaign_ids[c.campaign],
                    advertiser_id=campaign_advertisers[c.campaign],
                    placement=x.placement,
                    position=x.position,
                    page_type=x.page_type,
                    # the history carries its own conversions: the platform's attribution
                    # counts only clicks tracking recorded (tracking.services.TRACKED_SOURCES)
                    clicked_at=x.clicked_at,
                    order_id=x.order_id,
                    converted_at=x.converted_at,
                    revenue=Decimal(x.revenue) if x.revenue is not None else None,
                    currency=CURRENCY,
                    context={"category": world.categories[x.context_leaf][1]} if x.context_leaf >= 0 else {},
                )
            )
        for xchunk in _chunks(exposures, EXPOSURE_BATCH):
            stored += ad_exposures_import(exposures=xchunk, source=SOURCE).stored
        if on_day is not None:
            on_day(day.day)
    return accepted, duplicates, stored


def _manifest(row: SeededWorld, world: World, tokens: dict[str, str]) -> dict[str, Any]:
    return {
        "world": row.name,
        "size": row.size,
        "seed": row.seed,
        "start": row.start.isoformat(),
        "days": world.cfg.days,
        "advertisers": {
            a.key: {"id": pid, "token": tokens.get(a.key)}
            for a in world.advertisers
            if (pid := _mapped(row, "advertiser").get(a.key)) is not None
        },
        "campaigns": _mapped(row, "campaign"),
        "creatives": _mapped(row, "creative"),
    }


def world_seed(
    *,
    size: str = "demo",
    seed: int = 42,
    days: int | None = None,
    history: bool = True,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> SeedResult:
    """Seed world (size, seed) and write its manifest (world key → platform id, advertiser
    tokens) to var/marketplace/<size>-<seed>.json for `simulate`. Safe to re-run."""
    report: Progress = progress or (lambda phase, done, total: None)
    row, world = seeded_world(size=size, seed=seed, days=days, now=now)
    path = manifest_path(row.name)
    tokens: dict[str, str] = {}
    if path.is_file():
        old = json.loads(path.read_text())
        tokens = {k: v["token"] for k, v in old.get("advertisers", {}).items() if v.get("token")}
    products_created = _seed_catalogue(world, report)
    advertisers, campaigns_made, creatives = _seed_advertisers(row, world, tokens, report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_manifest(row, world, tokens), indent=1, sort_keys=True))
    accepted = duplicates = stored = 0
    if history:
        accepted, duplicates, stored = _seed_history(row, world, report)
    row.refresh_from_db()
    return SeedResult(
        world=row.name,
        products_created=products_created,
        advertisers_created=advertisers,
        campaigns_created=campaigns_made,
        creatives_created=creatives,
        events_accepted=accepted,
        events_duplicate=duplicates,
        exposures_stored=stored,
        days_loaded=row.days_loaded,
        manifest_path=str(path),
    )
