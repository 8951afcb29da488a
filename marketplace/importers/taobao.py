"""Import the Taobao "Ad Display/Click Data" dataset (Tianchi 56, SPEC §6) through the
platform's services: ad_feature.csv → advertisers (customer), campaigns (campaign_id),
creatives (adgroup_id, one catalog product each); raw_sample.csv → ad impressions and
clicks (ranking.services.ad_exposures_import); behavior_log.csv → behaviour events
(behaviour.services.events_ingest). user_profile.csv is counted and not imported (the
event API has no profile-attribute event; see docs/marketplace.md).

Streaming and memory-bounded: files are read line by line in chunks; only the id maps
(adgroup → creative/campaign/advertiser) are held in memory. Resumable: the byte offset
after each committed chunk is saved per file; idempotent regardless, because advertiser,
campaign and creative ids are recorded once (marketplace SeededObject), and event ids /
exposure keys are derived from the row's identity (its fields, not its position).
"""

from __future__ import annotations

import csv
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import transaction

from behaviour.services import events_ingest
from campaigns import services as campaigns
from catalog.services import ProductInput, products_upsert
from ranking.services import AdExposure, ad_exposures_import

from ..models import SeededObject, SeededWorld

AD_FEATURE = "ad_feature.csv"
RAW_SAMPLE = "raw_sample.csv"
USER_PROFILE = "user_profile.csv"
BEHAVIOR_LOG = "behavior_log.csv"
FILES = (AD_FEATURE, RAW_SAMPLE, BEHAVIOR_LOG, USER_PROFILE)
HEADERS = {
    AD_FEATURE: ("adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price"),
    RAW_SAMPLE: ("user", "time_stamp", "adgroup_id", "pid", "nonclk", "clk"),
    USER_PROFILE: (
        "userid",
        "cms_segid",
        "cms_group_id",
        "final_gender_code",
        "age_level",
        "pvalue_level",
        "shopping_level",
        "occupation",
        "new_user_class_level",
    ),
    BEHAVIOR_LOG: ("user", "time_stamp", "btag", "cate", "brand"),
}
ERROR_MISSING_FILES = "Not a Taobao dataset directory: {path} lacks {files}."
ERROR_HEADER = "{file}: expected the header {expected}, found {found}."

NAMESPACE = "taobao"  # SeededWorld name holding the dataset's id map
ACTOR = "taobao-import"
SOURCE = "taobao-import"
CURRENCY = "CNY"
CAMPAIGN_START = datetime(2017, 1, 1, tzinfo=UTC)
SHOP = "https://item.taobao.example"
_NS = uuid.UUID("c3a1e5b2-7d44-4f3a-9e0b-5b8d2f6c1a70")
# behavior_log btag → wire event type (fav has no event of its own: a product_view with fav)
BTAG_TYPES = {"pv": "product_view", "fav": "product_view", "cart": "add_to_cart", "buy": "purchase"}

Progress = Callable[[int], None]  # bytes read since the last call


@dataclass
class TaobaoImportResult:
    advertisers: int = 0
    campaigns: int = 0
    creatives: int = 0
    products: int = 0
    placements: int = 0
    impressions: int = 0
    clicks: int = 0
    behaviour_events: int = 0
    duplicates: int = 0
    skipped_rows: int = 0  # malformed rows, and user_profile rows (not imported)
    rows: dict[str, int] = field(default_factory=dict)
    resumed_bytes: int = 0


def user_id(raw: str) -> str:
    return f"tb-{raw}"


def product_id(adgroup_id: str) -> str:
    return f"tb-ad{adgroup_id}"


def behaviour_product_id(cate: str, brand: str) -> str:
    # the log names a category and brand, not an item: one pseudo product per pair
    return f"tb-c{cate}-b{brand}"


def placement_key(pid: str) -> str:
    return "tb_" + "".join(ch if ch.isalnum() else "_" for ch in pid.lower())[:60]


def exposure_key(row: dict[str, str]) -> str:
    # one impression = (user, second, ad group, slot); an exact duplicate row is the same impression
    return f"taobao:{row['user']}:{row['time_stamp']}:{row['adgroup_id']}:{row['pid']}"


def behaviour_event_id(row: dict[str, str]) -> str:
    key = f"{row['user']}:{row['time_stamp']}:{row['btag']}:{row['cate']}:{row['brand']}"
    return str(uuid.uuid5(_NS, key))


def total_bytes(path: Path) -> int:
    return sum((path / f).stat().st_size for f in FILES if (path / f).is_file())


def _at(ts: str) -> datetime:
    return datetime.fromtimestamp(int(ts), tz=UTC)


def _check(path: Path) -> None:
    missing = [f for f in (AD_FEATURE, RAW_SAMPLE) if not (path / f).is_file()]
    if missing:
        raise ValueError(ERROR_MISSING_FILES.format(path=path, files=", ".join(missing)))


class _State:
    """Per-file resume offsets, keyed by the file's path, size and mtime."""

    def __init__(self, state_dir: Path, path: Path, restart: bool) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        ident = "|".join(
            f"{(path / f).resolve()}:{(path / f).stat().st_size}:{(path / f).stat().st_mtime_ns}"
            for f in FILES
            if (path / f).is_file()
        )
        self.file = state_dir / f"taobao-{hashlib.sha256(ident.encode()).hexdigest()[:24]}.json"
        self.offsets: dict[str, int] = {}
        if self.file.is_file() and not restart:
            self.offsets = json.loads(self.file.read_text())["offsets"]

    def save(self, name: str, offset: int) -> None:
        self.offsets[name] = offset
        self.file.write_text(json.dumps({"offsets": self.offsets}))


def _chunks(fh: Any, name: str, start: int, size: int) -> Iterator[tuple[list[dict[str, str]], int, int]]:
    """([row dict], end offset, malformed count) per chunk, read line by line from `start`."""
    header = fh.readline().decode("utf-8-sig").strip().split(",")
    expected = list(HEADERS[name])
    if header != expected:
        raise ValueError(ERROR_HEADER.format(file=name, expected=",".join(expected), found=",".join(header)))
    if start > fh.tell():
        fh.seek(start)
    rows: list[dict[str, str]] = []
    bad = 0
    while True:
        line = fh.readline()
        if not line:
            break
        fields = next(csv.reader([line.decode("utf-8", "replace")]), [])
        if len(fields) != len(expected) or any(not f.strip() for f in fields[:2]):
            bad += 1 if line.strip() else 0
        else:
            rows.append({k: v.strip() for k, v in zip(expected, fields, strict=True)})
        if len(rows) >= size:
            yield rows, fh.tell(), bad
            rows, bad = [], 0
    yield rows, fh.tell(), bad


def _money(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return Decimal("0")
    return value.quantize(Decimal("0.01")) if value.is_finite() and value >= 0 else Decimal("0")


@dataclass
class _Maps:
    world: SeededWorld
    advertiser: dict[str, int]
    campaign: dict[str, int]
    creative: dict[str, int]
    creative_campaign: dict[str, tuple[int, int]]  # adgroup → (campaign id, advertiser id)
    placements: set[str]


def _maps() -> _Maps:
    world, _ = SeededWorld.objects.get_or_create(
        name=NAMESPACE, defaults={"size": NAMESPACE, "seed": 0, "start": CAMPAIGN_START}
    )
    by_kind: dict[str, dict[str, int]] = {"advertiser": {}, "campaign": {}, "creative": {}, "adgroup": {}}
    for kind, key, pid in SeededObject.objects.filter(world=world).values_list("kind", "key", "platform_id").iterator():
        by_kind.setdefault(kind, {})[key] = int(pid)
    return _Maps(world, by_kind["advertiser"], by_kind["campaign"], by_kind["creative"], {}, set())


def _import_ads(rows: list[dict[str, str]], maps: _Maps, result: TaobaoImportResult) -> None:
    products = []
    for row in rows:
        products.append(
            ProductInput(
                product_id=product_id(row["adgroup_id"]),
                title=f"Taobao item {row['adgroup_id']} (category {row['cate_id']}, brand {row['brand']})",
                category_path=(f"cate-{row['cate_id']}",),
                brand="" if row["brand"] in ("", "NULL") else row["brand"],
                price=_money(row["price"]),
                currency=CURRENCY,
                url=f"{SHOP}/{row['adgroup_id']}",
                image_url=f"{SHOP}/{row['adgroup_id']}.jpg",
                in_stock=True,
            )
        )
    result.products += products_upsert(products=products, actor=ACTOR).created
    # a campaign id is taken to belong to one customer; keyed with it so a stray row can
    # never attach a creative to another advertiser's campaign
    keyed = [(row["customer"], f"{row['customer']}/{row['campaign_id']}", row["adgroup_id"], row) for row in rows]
    with transaction.atomic():  # the chunk's platform objects and their id map rows commit together
        seeded: list[SeededObject] = []
        customers = list(dict.fromkeys(c for c, _, _, _ in keyed if c not in maps.advertiser))
        ids = campaigns.advertisers_create(
            advertisers=[
                campaigns.AdvertiserInput(f"Taobao customer {c}", CURRENCY, "Asia/Shanghai") for c in customers
            ],
            actor=ACTOR,
        )
        maps.advertiser.update(zip(customers, ids, strict=True))
        seeded += [
            SeededObject(world=maps.world, kind="advertiser", key=c, platform_id=i)
            for c, i in zip(customers, ids, strict=True)
        ]
        result.advertisers += len(ids)
        new_campaigns = {camp: (c, r) for c, camp, _, r in keyed if camp not in maps.campaign}
        ids = campaigns.campaigns_create(
            campaigns=[
                # historical: created as drafts so imported campaigns never serve live traffic
                campaigns.CampaignInput(
                    maps.advertiser[c],
                    {
                        "name": f"Taobao campaign {r['campaign_id']}",
                        "objective": "clicks",
                        "bid_model": "cpc",
                        "bid": Decimal("0.10"),
                        "daily_budget": Decimal("1000"),  # history is not billed; drafts never serve
                        "start": CAMPAIGN_START,
                        "timezone": "Asia/Shanghai",
                    },
                    status="draft",
                )
                for c, r in new_campaigns.values()
            ],
            actor=ACTOR,
        )
        maps.campaign.update(zip(new_campaigns, ids, strict=True))
        seeded += [
            SeededObject(world=maps.world, kind="campaign", key=k, platform_id=i)
            for k, i in zip(new_campaigns, ids, strict=True)
        ]
        result.campaigns += len(ids)
        new_creatives = {a: (c, camp, r) for c, camp, a, r in keyed if a not in maps.creative}
        ids = campaigns.creatives_create(
            creatives=[
                campaigns.CreativeInput(
                    maps.advertiser[c],
                    maps.campaign[camp],
                    {
                        "headline": f"Taobao ad group {a}",
                        "body": f"category {r['cate_id']}, brand {r['brand']}, price {r['price']}",
                        "image_url": f"{SHOP}/{a}.jpg",
                        "landing_url": f"{SHOP}/{a}",
                        "product_id": product_id(a),
                    },
                )
                for a, (c, camp, r) in new_creatives.items()
            ],
            actor=ACTOR,
        )
        maps.creative.update(zip(new_creatives, ids, strict=True))
        seeded += [
            SeededObject(world=maps.world, kind="creative", key=k, platform_id=i)
            for k, i in zip(new_creatives, ids, strict=True)
        ]
        result.creatives += len(ids)
        SeededObject.objects.bulk_create(seeded)
    for customer, campaign, adgroup, _ in keyed:
        maps.creative_campaign[adgroup] = (maps.campaign[campaign], maps.advertiser[customer])


def _ensure_placement(pid: str, maps: _Maps, result: TaobaoImportResult) -> str:
    key = placement_key(pid)
    if key not in maps.placements:
        _id, created = campaigns.placement_upsert(
            spec={"key": key, "page_types": ["home"], "slots": 1, "floor_cpm": Decimal("0")}, actor=ACTOR
        )
        result.placements += int(created)
        maps.placements.add(key)
    return key


def _import_samples(rows: list[dict[str, str]], maps: _Maps, result: TaobaoImportResult) -> None:
    exposures = []
    for row in rows:
        adgroup = row["adgroup_id"]
        owner = maps.creative_campaign.get(adgroup)
        if owner is None or not row["time_stamp"].isdigit():
            result.skipped_rows += 1  # an ad group absent from ad_feature.csv, or a bad time
            continue
        at = _at(row["time_stamp"])
        clicked = row["clk"] == "1"
        exposures.append(
            AdExposure(
                exposure_key=exposure_key(row),
                user_id=user_id(row["user"]),
                at=at,
                creative_id=maps.creative[adgroup],
                campaign_id=owner[0],
                advertiser_id=owner[1],
                placement=_ensure_placement(row["pid"], maps, result),
                position=1,
                page_type="home",
                clicked_at=at if clicked else None,
                currency=CURRENCY,
                context={"pid": row["pid"]},
            )
        )
    # clicked and plain exposures go in separate calls: an exposure's events commit together,
    # so what was stored tells exactly how many impressions and clicks were new
    plain = [x for x in exposures if x.clicked_at is None]
    with_click = [x for x in exposures if x.clicked_at is not None]
    if plain:
        out = ad_exposures_import(exposures=plain, source=SOURCE)
        result.impressions += out.stored
        result.duplicates += out.duplicates
    if with_click:
        out = ad_exposures_import(exposures=with_click, source=SOURCE)
        result.impressions += out.stored // 2
        result.clicks += out.stored // 2
        result.duplicates += out.duplicates


def _behaviour_event(row: dict[str, str]) -> dict[str, Any] | None:
    type_ = BTAG_TYPES.get(row["btag"])
    if type_ is None or not row["time_stamp"].isdigit():
        return None
    pid = behaviour_product_id(row["cate"], row["brand"])
    props: dict[str, Any] = {"product_id": pid, "category": row["cate"], "brand": row["brand"]}
    if row["btag"] == "fav":
        props["fav"] = True
    if type_ == "add_to_cart":
        props.update(quantity=1, price="0")  # the log carries no price
    if type_ == "purchase":
        props = {
            "order_id": f"tb-{row['user']}-{row['time_stamp']}-{row['cate']}-{row['brand']}",
            "items": [{"product_id": pid, "quantity": 1, "price": "0"}],
            "revenue": "0",
            "currency": CURRENCY,
            "category": row["cate"],
            "brand": row["brand"],
        }
    return {
        "event_id": behaviour_event_id(row),
        "type": type_,
        "user_id": user_id(row["user"]),
        "timestamp": _at(row["time_stamp"]).isoformat(),
        "properties": props,
    }


def _import_behaviour(rows: list[dict[str, str]], result: TaobaoImportResult) -> None:
    events = []
    for row in rows:
        ev = _behaviour_event(row)
        if ev is None:
            result.skipped_rows += 1
        else:
            events.append(ev)
    for i in range(0, len(events), 1000):
        out = events_ingest(raw_events=events[i : i + 1000], source=SOURCE)
        result.behaviour_events += out.accepted
        result.duplicates += out.duplicates
        result.skipped_rows += len(out.rejected)


def taobao_import(
    *,
    path: Path,
    state_dir: Path,
    chunk_rows: int = 5000,
    restart: bool = False,
    progress: Progress | None = None,
) -> TaobaoImportResult:
    """Import the dataset directory `path` (ad_feature first: the id maps must exist before
    samples refer to them). Re-running after a complete run stores nothing new."""
    _check(path)
    tick: Progress = progress or (lambda n: None)
    state = _State(state_dir, path, restart)
    result = TaobaoImportResult()
    maps = _maps()
    # ad_feature is always read in full (it is small and rebuilds the adgroup → owner map);
    # everything already created is found in the id map and skipped.
    for name in FILES:
        file = path / name
        if not file.is_file():
            continue
        start = 0 if name == AD_FEATURE else state.offsets.get(name, 0)
        result.resumed_bytes += start
        tick(start)
        last = start
        rows_seen = 0
        with open(file, "rb") as fh:
            for rows, offset, bad in _chunks(fh, name, start, chunk_rows):
                result.skipped_rows += bad
                rows_seen += len(rows) + bad
                if name == AD_FEATURE:
                    _import_ads(rows, maps, result)
                elif name == RAW_SAMPLE:
                    _import_samples(rows, maps, result)
                elif name == BEHAVIOR_LOG:
                    _import_behaviour(rows, result)
                else:
                    result.skipped_rows += len(rows)
                if name != AD_FEATURE:
                    state.save(name, offset)
                tick(offset - last)
                last = offset
        result.rows[name] = rows_seen
    return result
