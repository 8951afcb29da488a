"""Writes of delivery: the /rank decision (`rank_decide`: eligibility → candidates →
one batched scoring call → auction → pacing/exploration → variants → tracking URLs →
AdDecisionMade appended) and the pacing controller's tick (`pacing_tick`).

Time and randomness are injected (`now=`, `rng=`) so that decisions replay exactly in
tests and simulations."""

from __future__ import annotations

import logging
import os
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.selectors import DeliveryCampaign, local_day
from catalog import selectors as catalog
from profiles import selectors as profiles
from ranking import selectors as ranking
from ranking.selectors import ScoringRequest
from tracking import selectors as tracking_selectors
from tracking import services as tracking

from . import candidates as cands
from . import eligibility as rules
from . import explain, exploration, pacing, state, variants
from .auction import Bid, Win, ecpm_of, order_value, run_auction, value_of
from .calibration import UNCALIBRATED
from .decisionlog import candidate_log, decision_event, decision_record
from .models import PacingState

logger = logging.getLogger(__name__)

POLICIES = ("auto", "random", "popular")
PAGE_TYPES = ("home", "category", "product", "search", "cart")
MAX_CANDIDATES_REQUESTED = 500
ERROR_UNKNOWN_PLACEMENT = "Unknown placement {key!r}."
ERROR_UNKNOWN_POLICY = "Unknown policy; use one of: auto, random, popular."


# the live clock's draws (pacing, exploration, variants): one generator per process, seeded
# from the OS. A fresh random.Random() per decision read 2.5 KB of os.urandom to seed
# itself (~2.5 % of a web worker's samples); draws never need to be secret
_LIVE_RNG = random.Random()
os.register_at_fork(after_in_child=_LIVE_RNG.seed)


class UnknownPlacementError(Exception):
    """The request names a placement that does not exist."""


@dataclass(frozen=True)
class RankRequest:
    user_id: str
    placement: str
    page_type: str
    limit: int = 1
    session_id: str | None = None
    category_id: str | None = None
    product_id: str | None = None
    query: str | None = None
    device: str | None = None
    geo: str | None = None
    candidates: tuple[int, ...] | None = None  # re-ranking mode
    explain: bool = False
    policy: str = "auto"


@dataclass(frozen=True)
class RankedAd:
    creative_id: int
    campaign_id: int
    advertiser_id: int
    product_id: str | None
    headline: str
    body: str
    image_url: str
    landing_url: str
    click_url: str
    impression_url: str
    position: int
    pricing_model: str
    charge: Decimal
    p_click: float
    p_conversion: float
    ecpm: float
    variant: int | None = None
    reasons: list[dict[str, str]] | None = None
    score_breakdown: dict[str, Any] | None = None


@dataclass(frozen=True)
class RankResult:
    request_id: str
    model_version: str
    ads: list[RankedAd] = field(default_factory=list)


def _slot_values(sc: state.ServableCreative, query: str | None) -> dict[str, str]:
    p = sc.product
    values: dict[str, str] = {}
    if query:
        values["query"] = variants.clean_value(query)
    if p is not None:
        if p.category_path:
            values["category"] = variants.clean_value(p.category_path[-1])
        if p.brand:
            values["brand"] = variants.clean_value(p.brand)
        if p.title:
            values["product"] = variants.clean_value(p.title)
        values["price"] = variants.clean_value(f"{p.price:.2f} {p.currency}")
    return values


def _context_categories(req: RankRequest, snap: state.Snapshot) -> frozenset[str]:
    cats: set[str] = set()
    if req.category_id:
        cats.add(req.category_id)
    if req.product_id:
        product = snap.structure.products.get(req.product_id)
        facts = product or catalog.product_facts_cached([req.product_id]).get(req.product_id)
        if facts is not None:
            cats.update(facts.category_path)
    return frozenset(cats)


def _interests(profile: profiles.ProfileSnapshot | None) -> dict[str, float]:
    if profile is None:
        return {}
    top = sorted(profile.categories.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    return {k: v for k, v in top if v > 0}


class EligibleCreatives:
    """The servable creatives of the eligible campaigns minus the capped ones, without
    materialising a 10k-element set per request (membership is two dict lookups)."""

    def __init__(self, structure: state.Structure, ok: dict[int, DeliveryCampaign], excluded: set[int]) -> None:
        self._structure, self._ok, self._excluded = structure, ok, excluded
        self._n: int | None = None  # counted when asked (the HNSW path): a pass over ~1,000 campaigns

    def __contains__(self, cid: object) -> bool:
        sc = self._structure.creatives.get(cid)  # type: ignore[call-overload]
        return sc is not None and sc.campaign_id in self._ok and cid not in self._excluded

    def __len__(self) -> int:
        if self._n is None:
            by_campaign = self._structure.by_campaign
            self._n = sum(len(by_campaign.get(cid, ())) for cid in self._ok) - len(self._excluded)
        return self._n

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __iter__(self) -> Iterator[int]:
        for campaign_id in self._ok:
            for cid in self._structure.by_campaign.get(campaign_id, ()):
                if cid not in self._excluded:
                    yield cid


@dataclass(frozen=True)
class _StaticPlan:
    """The campaign pass for one context, cached per spend reload: campaigns that pass
    every rule with nothing left to check per request, the ones that still need the
    request's keyword/segment rules or a pacing draw, the category-targeted ones indexed
    by category (a request checks only those its page or interest categories name; the
    others fail the category rule: `out` holds REASON_CATEGORY for all of them, a request
    overwrites it for the ones it checks), and the others' reasons. Checked in id order: the
    pacing draws consume the rng in the same order whichever campaigns are left."""

    plain: dict[int, DeliveryCampaign]
    check: tuple[int, ...]
    by_category: dict[str, tuple[int, ...]]  # the structure's index (_Targeting), timed-out ones included
    timed_out: dict[int, str]
    out: dict[int, str]


@dataclass(frozen=True)
class _Targeting:
    """The campaigns passing one context's placement rules, by what is left to check per
    request (category rules: indexed by category; keyword/segment rules; an even-pacing
    draw when throttled; nothing), in id order, and the others' reasons: cached per
    structure."""

    by_category: dict[str, tuple[int, ...]]
    contextual: tuple[int, ...]  # keyword/segment rules, no category rule
    paced: tuple[int, ...]
    free: tuple[int, ...]
    out: dict[int, str]  # placement reasons, and REASON_CATEGORY for every indexed campaign

    @classmethod
    def of(cls, structure: state.Structure, ctx: rules.RankContext) -> _Targeting:
        groups: tuple[list[int], list[int], list[int]] = ([], [], [])
        by_category: dict[str, list[int]] = {}
        out: dict[int, str] = {}
        for cid in sorted(structure.campaigns):
            c = structure.campaigns[cid]
            reason = rules.placement_reason(
                c, placement=ctx.placement, page_type=ctx.page_type, device=ctx.device, geo=ctx.geo
            )
            if reason is not None:
                out[cid] = reason
            elif c.targeting.categories:
                for category in set(c.targeting.categories):
                    by_category.setdefault(category, []).append(cid)
                out[cid] = rules.REASON_CATEGORY
            elif rules.needs_context(c):
                groups[0].append(cid)
            elif c.pacing == "even" and c.daily_budget is not None:
                groups[1].append(cid)
            else:
                groups[2].append(cid)
        return cls(
            by_category={k: tuple(v) for k, v in by_category.items()},
            contextual=tuple(groups[0]),
            paced=tuple(groups[1]),
            free=tuple(groups[2]),
            out=out,
        )


def _static_plan(snap: state.Snapshot, ctx: rules.RankContext, at: datetime) -> _StaticPlan:
    """Cached per spend reload and (placement, page type, device, geo): those rules move
    only with time and spend. Built from two caches: the placement rules per structure and
    context, the time/budget rules once per spend reload (every context shares them)."""
    key = (ctx.placement, ctx.page_type, ctx.device, ctx.geo)
    cached = snap.dynamic.static.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    structure = snap.structure
    targeting = structure.targeting.get(key)
    if targeting is None:
        targeting = _Targeting.of(structure, ctx)
        if len(structure.targeting) < 512:
            structure.targeting[key] = targeting
    timed_out = snap.dynamic.timed_out
    if timed_out is None:
        timed_out = {}
        for cid, c in structure.campaigns.items():
            today, total = snap.spend_of(cid)
            reason = rules.time_reason(c, at=at, spent_today=today, spent_total=total)
            if reason is not None:
                timed_out[cid] = reason
        snap.dynamic.timed_out = timed_out
    campaigns = structure.campaigns
    plain = {cid: campaigns[cid] for cid in targeting.free if cid not in timed_out}  # id order
    check = [cid for cid in targeting.contextual if cid not in timed_out]
    for cid in targeting.paced:
        if cid not in timed_out:
            if snap.throttle_of(cid) < 1.0:
                check.append(cid)
            else:
                plain[cid] = campaigns[cid]
    plan = _StaticPlan(
        plain=dict(sorted(plain.items())),
        check=tuple(sorted(check)),
        by_category=targeting.by_category,
        timed_out=timed_out,
        # the time rules come first (as in rules.static_reason)
        out={**targeting.out, **timed_out} if timed_out else targeting.out,
    )
    if len(snap.dynamic.static) < 512:
        snap.dynamic.static[key] = plan
    return plan


def _eligible_campaigns(
    snap: state.Snapshot, ctx: rules.RankContext, at: datetime, rng: random.Random, *, capped: bool, user_id: str
) -> tuple[dict[int, DeliveryCampaign], dict[int, str], rules.ImpressionCounts]:
    """({id: campaign} passing every campaign-level rule and pacing, {id: reason} of the
    others, the shopper's recent impressions)."""
    plan = _static_plan(snap, ctx, at)
    ok = dict(plan.plain)
    out = dict(plan.out)
    campaigns_by_id = snap.structure.campaigns
    todo = set(plan.check)
    for category in ctx.context_categories | ctx.interest_categories:
        todo.update(cid for cid in plan.by_category.get(category, ()) if cid not in plan.timed_out)
    for cid in sorted(todo):
        c = campaigns_by_id[cid]
        out.pop(cid, None)
        reason = rules.context_reason(c, ctx) if rules.needs_context(c) else None
        if reason is None and c.pacing == "even" and c.daily_budget is not None:
            throttle = snap.throttle_of(cid)
            if throttle < 1.0 and rng.random() >= throttle:
                reason = rules.REASON_PACED
        if reason is None:
            ok[cid] = c
        else:
            out[cid] = reason
    seen = rules.ImpressionCounts()
    cap_windows = snap.structure.cap_windows
    capped_ok = [cid for cid in cap_windows if cid in ok] if capped else []
    if capped_ok:
        window = max(map(cap_windows.__getitem__, capped_ok))
        recent = tracking_selectors.recent_impressions(user_id=user_id, since=at - timedelta(seconds=window))
        seen = rules.ImpressionCounts.of((r.campaign_id, r.creative_id, r.at) for r in recent)
        for cid in (c for c in capped_ok if c in seen.by_campaign):  # caps bind only what was seen (max ≥ 1)
            c = ok[cid]
            reason = rules.cap_reason(c.frequency_caps, campaign_id=cid, creative_id=None, seen=seen, at=at)
            if reason is not None:
                out[cid] = reason
                del ok[cid]
    return ok, out, seen


def rank_decide(*, request: RankRequest, now: datetime | None = None, rng: random.Random | None = None) -> RankResult:
    """Decide which ads to show (SPEC §4 /rank) and append the decision to the log.
    Raises UnknownPlacementError for an unknown placement."""
    req = request
    at = now or timezone.now()
    rng = rng or _LIVE_RNG
    placement = state.placement(req.placement, at)
    if placement is None:
        raise UnknownPlacementError(ERROR_UNKNOWN_PLACEMENT.format(key=req.placement))
    snap = state.snapshot(at, live=now is None)
    if _pacing_due(snap, at):
        if now is None and settings.DELIVERY_PACING_TICK_BACKGROUND:
            _pacing_tick_in_background()  # ~0.5 ms per even campaign: never on a live request
        else:  # an injected clock (simulate), or tests: the tick is part of the decision
            pacing_tick(at=at)
            snap = state.refresh_dynamic(at)
    structure = snap.structure
    scorer = ranking.champion_scorer()

    # read even for "random": consent decides what may be used (caps, segment targeting)
    retrieving = req.policy == "auto" and req.candidates is None
    profile, user_vector = profiles.serving_profile(user_id=req.user_id, as_of=now, vector=retrieving)
    consent = profile.consent if profile is not None else True
    personal = profile if (profile is not None and consent) else None
    interests = _interests(personal)
    context_categories = _context_categories(req, snap)
    ctx = rules.RankContext(
        placement=req.placement,
        page_type=req.page_type,
        device=req.device,
        geo=req.geo,
        query=req.query,
        context_categories=context_categories,
        interest_categories=frozenset(interests),
        segment=personal.segment if personal else None,
        personal=personal is not None,
    )
    ok_campaigns, campaign_out, seen = _eligible_campaigns(snap, ctx, at, rng, capped=consent, user_id=req.user_id)
    eligibility = Counter(campaign_out.values())

    def creative_reason(cid: int) -> str | None:
        sc = structure.creatives.get(cid)
        if sc is None:
            return rules.REASON_NOT_SERVABLE
        if sc.campaign_id not in ok_campaigns:
            return campaign_out.get(sc.campaign_id, rules.REASON_NOT_SERVABLE)
        caps = ok_campaigns[sc.campaign_id].frequency_caps
        if consent and caps:
            return rules.cap_reason(caps, campaign_id=sc.campaign_id, creative_id=cid, seen=seen, at=at)
        return None

    ineligible: list[tuple[int, str]] = []  # re-ranking mode: requested, not eligible, why
    sources: dict[int, set[str]] = {}
    distance: dict[int, float] = {}
    rerank = req.candidates is not None
    if rerank:
        assert req.candidates is not None
        for cid in dict.fromkeys(req.candidates):
            reason = creative_reason(cid)
            if reason is None:
                sources[cid] = {cands.SOURCE_REQUESTED}
            else:
                ineligible.append((cid, reason))
    else:
        excluded: set[int] = set()
        if consent and seen.by_creative:
            for campaign_id, c in ok_campaigns.items():
                if any(cap.scope == "creative" for cap in c.frequency_caps):
                    for cid in structure.by_campaign.get(campaign_id, ()):
                        reason = creative_reason(cid)
                        if reason is not None:
                            excluded.add(cid)
                            eligibility[reason] += 1
        eligible = EligibleCreatives(structure, ok_campaigns, excluded)
        if req.policy == "random":
            pool = sorted(eligible)
            picked = rng.sample(pool, min(len(pool), settings.DELIVERY_MAX_CANDIDATES))
            sources = {cid: {"random"} for cid in picked}
        elif req.policy == "popular":
            sources = {cid: {cands.SOURCE_POPULAR} for cid in cands._take(structure.popular, eligible, 50)}
        else:
            user_vec = user_space = None
            # the vector's version names its space: content (MiniLM text) or a learned
            # two-tower version, whose creative vectors are searched in the same space
            if personal is not None and user_vector is not None:
                user_space, user_vec = user_vector
            sources, distance = cands.gather(
                structure,
                eligible,
                rng=rng,
                user_vec=user_vec,
                user_space=user_space,
                query_vec=cands.query_vector(req.query, wait=now is not None)
                if req.page_type == "search" or req.query
                else None,
                context_product=req.product_id,
                context_categories=sorted(context_categories),
                viewed_products=personal.recent_products if personal else (),
                interest_categories=list(interests)[:3],
            )

    ids = list(sources)
    items = [structure.creatives[cid].item for cid in ids]
    scoring_context = {
        "page_type": req.page_type,
        "category_id": req.category_id,
        "product_id": req.product_id,
        "query": req.query,
        "device": req.device,
        "geo": req.geo,
        "hour": at.hour,
        "placement": req.placement,
    }
    scored = (
        scorer.score(ScoringRequest(user_id=req.user_id, profile=personal, context=scoring_context, candidates=items))
        if items
        else None
    )
    bids: list[Bid] = []
    # (p_click, p_conversion, ecpm, calibration): p_click is the model's times the live
    # calibration of the creative (auto only, ADR 0062; 1.0 otherwise)
    model_scores: dict[int, tuple[float, float, float, float]] = {}
    values: dict[int, float] = {}  # the advertiser's expected order value per mille, by the model's p_conversion
    calibration = (
        structure.stats.calibration.get(scorer.version, UNCALIBRATED)
        if req.policy == "auto" and settings.DELIVERY_CALIBRATION
        else UNCALIBRATED
    )
    for i, cid in enumerate(ids):
        sc = structure.creatives[cid]
        c = ok_campaigns[sc.campaign_id]
        assert scored is not None
        m = calibration.of(cid)
        pc, pv = float(scored.p_click[i]) * m, float(scored.p_conversion[i])
        e = ecpm_of(c.bid_model, c.bid, pc, pv)
        model_scores[cid] = (pc, pv, e, m)
        v = values[cid] = value_of(pv, order_value(sc.product, c.currency))
        bids.append(Bid(cid, c.campaign_id, c.advertiser_id, c.bid_model, c.bid, pc, pv, e, value=v))

    if req.policy == "auto" and not rerank:
        bids = _with_explorer(bids, structure, rng)
    # baselines rank by their own rule and keep the plain eCPM prices (ADR 0040, 0044)
    value_weight = settings.DELIVERY_VALUE_WEIGHT if req.policy == "auto" else 0.0
    click_weight = settings.DELIVERY_CLICK_VALUE if req.policy == "auto" else 0.0
    order: list[Bid] = bids  # random: the random draw's order
    if req.policy == "popular":
        order = sorted(bids, key=lambda b: (-structure.popularity(b.creative_id), b.creative_id))
    slots = len(order) if rerank else min(req.limit, placement.slots)
    wins, lost = run_auction(
        order,
        slots=slots,
        floor_cpm=placement.floor_cpm,
        one_per_advertiser=settings.DELIVERY_ONE_AD_PER_ADVERTISER and not rerank,
        presorted=req.policy != "auto",
        value_weight=value_weight,
        click_weight=click_weight,
    )

    request_id = uuid.uuid4().hex
    segment_key = ctx.segment or ""
    ads: list[RankedAd] = []
    winners_logged: list[dict[str, Any]] = []
    for w in wins:
        ad = _render(
            w,
            req,
            snap,
            ctx,
            placement.floor_cpm,
            request_id,
            at,
            rng,
            segment_key,
            model_scores,
            scorer.version,
            sources,
            distance,
            interests,
            personal,
            consent,
        )
        ads.append(ad)
        winners_logged.append(
            {
                "creative_id": ad.creative_id,
                "campaign_id": ad.campaign_id,
                "advertiser_id": ad.advertiser_id,
                "product_id": ad.product_id,
                "position": ad.position,
                "variant": ad.variant,
                "pricing_model": ad.pricing_model,
                "price": str(ad.charge),
                "scores": {
                    "p_click": ad.p_click,
                    "p_conversion": ad.p_conversion,
                    "ecpm": ad.ecpm,
                    "value": values[ad.creative_id],
                },
                "rank_score": w.score,
                "clearing_ecpm": w.clearing_ecpm,
                "exploratory": w.bid.exploratory,
            }
        )
    won = {w.bid.creative_id for w in wins}
    candidates = candidate_log(
        ineligible=ineligible,
        ids=ids,
        campaign_ids=[structure.creatives[cid].campaign_id for cid in ids],
        advertiser_ids=[structure.creatives[cid].creative.advertiser_id for cid in ids],
        scores=model_scores,
        values=values,
        features=scored.feature_columns if scored is not None else {},
        sources=sources,
        distance=distance,
        reasons=[None if cid in won else lost.get(cid, rules.REASON_OUTBID) for cid in ids],
    )
    event = decision_event(
        request_id=request_id,
        user_id=req.user_id,
        session_id=req.session_id,
        at=at,
        placement=req.placement,
        page_type=req.page_type,
        context={k: v for k, v in scoring_context.items() if v is not None and k not in ("placement", "page_type")},
        model_version=scorer.version,
        limit=req.limit,
        policy=req.policy,
        mode="rerank" if rerank else "select",
        candidates=candidates,
        features_shared=scored.shared_features if scored is not None else {},
        eligibility=eligibility,
        winners=winners_logged,
        segment=ctx.segment,
        consent=consent,
        value_weight=value_weight,
        click_value=click_weight,
    )
    decision_record(event, wait=now is not None)
    return RankResult(request_id=request_id, model_version=scorer.version, ads=ads)


def _with_explorer(bids: list[Bid], structure: state.Structure, rng: random.Random) -> list[Bid]:
    """On DELIVERY_EXPLORATION_RATE of decisions, one new creative ranks by a Thompson draw
    of its click rate instead of the model's (ADR 0042)."""
    if not exploration.explore_now(rng, settings.DELIVERY_EXPLORATION_RATE):
        return bids
    new = [b.creative_id for b in bids if structure.is_new(b.creative_id) and b.bid_model != "cpm"]
    if not new:
        return bids
    by_id = {b.creative_id: b for b in bids}
    picked = exploration.pick_explorer(rng, new, {cid: by_id[cid].p_click for cid in new}, structure.stats.by_creative)
    if picked is None:
        return bids
    cid, draw = picked
    b = by_id[cid]
    lift = draw / b.p_click if b.p_click > 0 else 1.0
    pv = b.p_conversion * lift
    explorer = Bid(
        b.creative_id,
        b.campaign_id,
        b.advertiser_id,
        b.bid_model,
        b.bid,
        draw,
        pv,
        ecpm_of(b.bid_model, b.bid, draw, pv),
        exploratory=True,
        value=b.value * lift,
    )
    return [explorer if x.creative_id == cid else x for x in bids]


def _render(
    w: Win,
    req: RankRequest,
    snap: state.Snapshot,
    ctx: rules.RankContext,
    floor_cpm: Decimal,
    request_id: str,
    at: datetime,
    rng: random.Random,
    segment_key: str,
    model_scores: dict[int, tuple[float, float, float, float]],
    model_version: str,
    sources: dict[int, set[str]],
    distance: dict[int, float],
    interests: dict[str, float],
    personal: profiles.ProfileSnapshot | None,
    consent: bool,
) -> RankedAd:
    structure = snap.structure
    sc = structure.creatives[w.bid.creative_id]
    cr = sc.creative
    campaign = structure.campaigns[sc.campaign_id]
    values = _slot_values(sc, req.query)
    options: list[int | None] = [None, *variants.renderable(cr.variants, values)]
    choice = (
        exploration.pick_variant(rng, options, structure.stats.by_variant.get(cr.creative_id, {}), segment_key)
        if len(options) > 1
        else None
    )
    rendered = variants.render(cr.headline, cr.body, cr.variants, choice, values)
    pc, pv, e, m = model_scores[cr.creative_id]
    served = tracking.ServedAd(
        request_id=request_id,
        user_id=req.user_id,
        creative_id=cr.creative_id,
        campaign_id=sc.campaign_id,
        advertiser_id=cr.advertiser_id,
        placement=req.placement,
        position=w.position,
        pricing_model=campaign.bid_model,
        price=w.price,
        currency=campaign.currency,
        landing_url=cr.landing_url,
        served_at=at,
        segment=ctx.segment,
        variant=rendered.variant,
        consent=consent,
        p_click=pc / m,  # the model's own, which the live calibration measures
        model_version=model_version,
    )
    impression_url, click_url = tracking.tracking_urls(ad=served)
    reasons = breakdown = None
    if req.explain:
        reasons = explain.reasons(
            sources=sources.get(cr.creative_id, set()),
            categories=sc.categories,
            interests=interests,
            context_categories=ctx.context_categories,
            campaign=campaign,
            segment=ctx.segment,
            segment_name=personal.segment_name if personal else None,
            exploratory=w.bid.exploratory,
            distance=distance.get(cr.creative_id),
        )
        breakdown = explain.breakdown(
            w,
            model_p_click=pc,
            model_p_conversion=pv,
            calibration=m,
            floor_cpm=floor_cpm,
            throttle=snap.throttle_of(sc.campaign_id),
        )
    return RankedAd(
        creative_id=cr.creative_id,
        campaign_id=sc.campaign_id,
        advertiser_id=cr.advertiser_id,
        product_id=cr.product_id,
        headline=rendered.headline,
        body=rendered.body,
        image_url=cr.image_url,
        landing_url=cr.landing_url,
        click_url=click_url,
        impression_url=impression_url,
        position=w.position,
        pricing_model=campaign.bid_model,
        charge=w.price,
        p_click=pc,
        p_conversion=pv,
        ecpm=e,
        variant=rendered.variant,
        reasons=reasons,
        score_breakdown=breakdown,
    )


# --- pacing ------------------------------------------------------------------------------


_last_tick_attempt: list[datetime] = []


def _pacing_due(snap: state.Snapshot, at: datetime) -> bool:
    """Whether this process should try a controller tick: a campaign's tick is older than
    the interval, and this process has not tried in the last second (another process may
    hold the tick; its result shows with the next spend reload)."""
    interval = settings.DELIVERY_PACING_INTERVAL_SECONDS
    if _last_tick_attempt:
        since = (at - _last_tick_attempt[0]).total_seconds()
        if 0 <= since < min(interval, max(1.0, settings.DELIVERY_SPEND_TTL_SECONDS)):
            return False
    ticks = snap.dynamic.tick_range
    if ticks is None:  # once per spend reload, not per request
        even = [cid for cid, c in snap.structure.campaigns.items() if c.pacing == "even" and c.daily_budget is not None]
        known = [t for cid in even if (t := snap.dynamic.pacing_ticks.get(cid)) is not None]
        ticks = (len(known) < len(even), min(known, default=None), max(known, default=None))
        snap.dynamic.tick_range = ticks
    missing, earliest, latest = ticks
    due = missing or (earliest is not None and (at - earliest).total_seconds() >= interval)
    if due or (latest is not None and at < latest):  # a clock that went back ticks too
        _last_tick_attempt[:] = [at]
        return True
    return False


_PACING_LOCK_KEY = 7_040_001  # pg advisory lock: one process moves the controller per tick
_tick_thread_lock = threading.Lock()


def _pacing_tick_in_background() -> None:
    """Run pacing_tick on the live clock in a thread of its own (one at a time per process);
    its throttles reach requests with the next spend reload."""
    if not _tick_thread_lock.acquire(blocking=False):
        return

    def run() -> None:
        try:
            pacing_tick(at=timezone.now())
        except Exception:  # noqa: BLE001 - the next due check retries
            logger.exception("pacing tick failed")
        finally:
            _tick_thread_lock.release()
            connection.close()

    threading.Thread(target=run, name="pacing-tick", daemon=True).start()


def pacing_tick(*, at: datetime) -> int:
    """Move the even-pacing controller of every even campaign whose last tick is older
    than DELIVERY_PACING_INTERVAL_SECONDS (one transaction; a process that finds the lock
    taken skips: another one is ticking). Returns the number of campaigns updated."""
    structure = state.snapshot(at).structure
    even = {cid: c for cid, c in structure.campaigns.items() if c.pacing == "even" and c.daily_budget is not None}
    if not even:
        return 0
    from campaigns import selectors as campaigns

    interval = settings.DELIVERY_PACING_INTERVAL_SECONDS
    updated = 0
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [_PACING_LOCK_KEY])
            if not cur.fetchone()[0]:
                return 0
        spend = campaigns.spend_by_campaign(timezones={cid: c.timezone for cid, c in even.items()}, at=at)
        rows = {r.campaign_id: r for r in PacingState.objects.filter(campaign_id__in=list(even))}
        changed: list[PacingState] = []
        for cid, c in even.items():
            today = local_day(at, c.timezone)
            spent_today = spend.get(cid, (Decimal(0), Decimal(0)))[0]
            row = rows.get(cid)
            if row is None or row.day != today:
                row = row or PacingState(campaign_id=cid)
                row.day, row.throttle, row.spent_at_tick, row.tick_at = today, pacing.THROTTLE_START, spent_today, at
                row.spend_avg = row.exposure_avg = 0.0
                changed.append(row)
                continue
            elapsed = (at - row.tick_at).total_seconds()
            if elapsed < interval:
                continue  # ticked recently (or the clock went back: never move the state backwards)
            windows = pacing.active_windows(c.dayparts, c.timezone, pacing.day_start_of(at, c.timezone), c.start, c.end)
            budget = c.daily_budget
            assert budget is not None
            step = pacing.tick(
                pacing.Controller(row.throttle, row.spend_avg, row.exposure_avg),
                windows=windows,
                at=at,
                last_tick_at=max(row.tick_at, at - timedelta(days=1)),
                budget=budget,
                spent=spent_today,
                spent_at_last_tick=Decimal(row.spent_at_tick),
                shape=settings.DELIVERY_PACING_TRAFFIC_SHAPE or pacing.UNIFORM,
            )
            row.throttle, row.spend_avg, row.exposure_avg = step.throttle, step.spend_avg, step.exposure_avg
            row.spent_at_tick, row.tick_at = spent_today, at
            changed.append(row)
        new = [r for r in changed if r.campaign_id not in rows]
        if new:
            PacingState.objects.bulk_create(new)
        old = [r for r in changed if r.campaign_id in rows]
        if old:  # one pipelined statement per row (bulk_update's CASE over 500 rows cost ~1 s of CPU)
            with connection.cursor() as cur:
                cur.executemany(
                    "UPDATE delivery_pacing_state SET day = %s, throttle = %s, spent_at_tick = %s, tick_at = %s,"
                    " spend_avg = %s, exposure_avg = %s WHERE campaign_id = %s",
                    [
                        (r.day, r.throttle, r.spent_at_tick, r.tick_at, r.spend_avg, r.exposure_avg, r.campaign_id)
                        for r in old
                    ],
                )
        updated = len(changed)
    return updated
