"""Retrieval writes: train + evaluate the two-tower model against co-visitation and
popularity on one time split of the event log and publish its vectors to pgvector
(`retrieval_train`), evaluate a stored artifact on the current holdout
(`retrieval_evaluate`), and refresh the vectors of shoppers with new activity between
retrains (`retrieval_users_refresh`). Vectors go through `profiles.services`."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from profiles import selectors as profiles_selectors
from profiles import services as profiles_services

from . import source
from .covisitation import covisitation_fit, covisitation_strong_fit
from .dataset import (
    Interaction,
    RetrievalDataset,
    build_dataset,
    concat_features,
    interactions_from_events,
    shopper_features,
)
from .evaluation import evaluate_all, top_k_by_vectors
from .training import (
    TrainConfig,
    TrainedModel,
    artifact_dump,
    artifact_load,
    item_vectors,
    shopper_vectors,
    two_tower_fit,
)

logger = logging.getLogger(__name__)

ERROR_NO_DATA = "No product interactions in the event log before `until`: nothing to train on."
ERROR_NO_HOLDOUT = "The holdout window holds no next-session queries; widen the window or lower holdout_fraction."
MODEL_NAME = "two-tower/1"


@dataclass(frozen=True)
class RetrievalWindow:
    start: datetime  # first interaction used
    split: datetime  # training examples before, held-out queries from here
    until: datetime  # last event considered


@dataclass(frozen=True)
class RetrievalTrainResult:
    version: str  # of the written vectors (user_learned / item_learned / creative_learned)
    metrics: dict[str, float]  # "<model>.recall@10|50", "<model>.ndcg@10|50" for two_tower, covisitation, popularity
    artifact: bytes  # artifact_load() gives the model back on any host
    window: RetrievalWindow
    train_examples: int
    samples_per_second: float
    seconds: float
    device: str
    users_written: int = 0
    items_written: int = 0
    creatives_written: int = 0
    activated: bool = False


def _window(
    interactions: Sequence[Interaction], until: datetime | None, holdout_fraction: float
) -> tuple[float, float]:
    first, last = interactions[0].at, interactions[-1].at
    end = until.timestamp() if until is not None else last
    return first + (1.0 - holdout_fraction) * (end - first), end


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


def _dataset(data: source.LogData, *, split_at: float, end: float, text: Mapping[str, np.ndarray]) -> RetrievalDataset:
    dim = len(next(iter(text.values()))) if text else 384
    return build_dataset(
        data.interactions, data.catalog, split_at=split_at, until=end + 1e-3, text_vectors=text, text_dim=dim
    )


def _metrics(ds: RetrievalDataset, tm: TrainedModel | None) -> dict[str, float]:
    cv = covisitation_strong_fit(ds.train_interactions)
    plain = covisitation_fit(ds.train_interactions)
    two_tower = None
    if tm is not None:
        iv = item_vectors(tm)
        uv = shopper_vectors(tm, ds.query_features)
        ids = tm.vocab.items

        def two_tower(k: int) -> list[list[str]]:
            return top_k_by_vectors(uv, iv, ids, k)

    return evaluate_all(ds.queries, two_tower=two_tower, covisitation=cv, baselines={"covisitation_session": plain})


def _version(until: float, artifact: bytes) -> str:
    stamp = _dt(until).strftime("%Y%m%dT%H%M%S")
    return f"tt-{stamp}-{hashlib.sha1(artifact).hexdigest()[:8]}"


def _user_hash(xs: Sequence[Interaction]) -> str:
    """What a user vector was computed from: the number of interactions and the newest one."""
    return f"{len(xs)}:{xs[-1].at:.3f}" if xs else "0"


def retrieval_train(
    *,
    until: datetime | None = None,
    device: str = "auto",
    seed: int = 0,
    holdout_fraction: float = 0.2,
    config: TrainConfig | None = None,
    publish: bool = True,
    activate: bool = True,
    progress: Callable[[int, float], None] | None = None,
) -> RetrievalTrainResult:
    """Read the log up to `until`; train the two-tower model on interactions before the
    split (the last `holdout_fraction` of the window is held out); evaluate it beside
    co-visitation and popularity on the same next-session queries; with `publish`, write
    the vectors of every consenting shopper (shopper tower over their whole history up
    to `until`), every product (item tower) and every approved creative (its product's
    vector) as one version, the shopper encoder stored with it, and switch the pointers
    when `activate`. The served model is the evaluated one (metrics describe it)."""
    started = time.monotonic()
    data = source.log_read(until=until)
    if not data.interactions:
        raise ValueError(ERROR_NO_DATA)
    split_at, end = _window(data.interactions, until, holdout_fraction)
    text = source.product_text_vectors()
    ds = _dataset(data, split_at=split_at, end=end, text=text)
    cfg = replace(config or TrainConfig(), seed=seed)
    tm = two_tower_fit(ds, catalog=data.catalog, config=cfg, device=device, progress=progress)
    metrics = _metrics(ds, tm) if ds.queries else {"queries": 0.0}
    artifact = artifact_dump(tm)
    version = _version(end, artifact)
    result = RetrievalTrainResult(
        version=version,
        metrics=metrics,
        artifact=artifact,
        window=RetrievalWindow(start=_dt(data.interactions[0].at), split=_dt(split_at), until=_dt(end)),
        train_examples=len(ds.train_targets),
        samples_per_second=tm.samples_per_second,
        seconds=0.0,
        device=tm.device,
    )
    if publish:
        result = _publish(result, tm, data, at=end + 1e-3, activate=activate)
    logger.info(
        "retrieval_train %s: two-tower recall@50 %.4f, co-visitation %.4f, popularity %.4f (%d queries)",
        version,
        metrics.get("two_tower.recall@50", math.nan),
        metrics.get("covisitation.recall@50", math.nan),
        metrics.get("popularity.recall@50", math.nan),
        int(metrics.get("queries", 0)),
    )
    return replace(result, seconds=time.monotonic() - started)


def _publish(
    result: RetrievalTrainResult, tm: TrainedModel, data: source.LogData, *, at: float, activate: bool
) -> RetrievalTrainResult:
    iv = item_vectors(tm)
    items = {pid: iv[i] for i, pid in enumerate(tm.vocab.items)}
    known = [x for x in data.interactions if x.product_id in tm.vocab.item_index and x.user_id not in data.opted_out]
    feats = shopper_features(known, tm.catalog, tm.vocab, at=at)
    by_user: dict[str, list[Interaction]] = {}
    for x in known:
        by_user.setdefault(x.user_id, []).append(x)
    names = sorted(feats)
    uv = shopper_vectors(tm, concat_features([feats[u] for u in names])) if names else np.zeros((0, 1))
    users = {u: uv[i] for i, u in enumerate(names)}
    creatives = {cid: items[pid] for cid, pid in source.approved_creatives().items() if pid in items}
    v = result.version
    # items first: a shopper vector must never be served before the space it searches exists
    n_items = profiles_services.learned_embeddings_write(
        kind="item_learned", version=v, vectors=items, activate=activate, model=MODEL_NAME
    )
    n_creatives = 0
    if creatives:
        n_creatives = profiles_services.learned_embeddings_write(
            kind="creative_learned", version=v, vectors=creatives, activate=activate, model=MODEL_NAME
        )
    n_users = 0
    if users:
        n_users = profiles_services.learned_embeddings_write(
            kind="user_learned",
            version=v,
            vectors=users,
            activate=activate,
            model=MODEL_NAME,
            hashes={u: _user_hash(by_user[u]) for u in users},
            encoder=result.artifact,
            checkpoint=data.checkpoint,
        )
    return replace(
        result, users_written=n_users, items_written=n_items, creatives_written=n_creatives, activated=activate
    )


def retrieval_evaluate(
    *, artifact: bytes, until: datetime | None = None, holdout_fraction: float = 0.2, device: str = "cpu"
) -> dict[str, float]:
    """Metrics of a stored model (e.g. the champion's) beside co-visitation and popularity
    on the holdout of the current log: the same split `retrieval_train` would use, so a
    challenger and the champion are compared on the same queries."""
    data = source.log_read(until=until)
    if not data.interactions:
        raise ValueError(ERROR_NO_DATA)
    split_at, end = _window(data.interactions, until, holdout_fraction)
    tm = artifact_load(artifact, device=device)
    ds = build_dataset(
        data.interactions, data.catalog, split_at=split_at, until=end + 1e-3, vocab=tm.vocab, items=tm.items
    )
    if not ds.queries:
        raise ValueError(ERROR_NO_HOLDOUT)
    return _metrics(ds, tm)


PROMOTION_METRIC = "two_tower.recall@50"


@dataclass(frozen=True)
class RetrievalPromotion:
    result: RetrievalTrainResult
    promoted: bool
    reason: str
    champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None


def retrieval_train_promote(
    *,
    until: datetime | None = None,
    device: str = "auto",
    seed: int = 0,
    config: TrainConfig | None = None,
    metric: str = PROMOTION_METRIC,
    progress: Callable[[int, float], None] | None = None,
) -> RetrievalPromotion:
    """Champion/challenger for retrieval: train and write a new version without serving it,
    re-evaluate the served version's stored encoder on the challenger's holdout (same split,
    same queries), and switch every learned space to the challenger only if its `metric`
    (recall@50 by default) is higher. A refused challenger stays stored until the next
    cleanup (for inspection)."""
    champion = profiles_selectors.learned_encoder()
    result = retrieval_train(
        until=until, device=device, seed=seed, config=config, publish=True, activate=False, progress=progress
    )
    challenger = result.metrics.get(metric, math.nan)
    if champion is None:
        profiles_services.learned_version_activate(version=result.version)
        return RetrievalPromotion(result=replace(result, activated=True), promoted=True, reason="no champion")
    if champion.version == result.version:
        return RetrievalPromotion(
            result=result, promoted=False, reason="same version as the champion", champion_version=champion.version
        )
    champion_metrics = retrieval_evaluate(artifact=champion.artifact, until=until, device="cpu")
    held = champion_metrics.get(metric, math.nan)
    if not challenger > held:  # NaN never promotes
        reason = f"{metric} {challenger:.4f} does not beat the champion's {held:.4f} on the same holdout"
        logger.info("retrieval challenger %s refused: %s", result.version, reason)
        return RetrievalPromotion(
            result=result,
            promoted=False,
            reason=reason,
            champion_version=champion.version,
            champion_metrics=champion_metrics,
        )
    profiles_services.learned_version_activate(version=result.version)
    return RetrievalPromotion(
        result=replace(result, activated=True),
        promoted=True,
        reason=f"{metric} {challenger:.4f} > champion's {held:.4f}",
        champion_version=champion.version,
        champion_metrics=champion_metrics,
    )


@dataclass(frozen=True)
class UsersRefreshResult:
    version: str | None
    checked: int  # shoppers with product events after the version's checkpoint
    written: int  # of which the vector changed (the rest were already up to date)
    seconds: float
    removed: int = 0  # learned vectors of shoppers who have since opted out


def retrieval_users_refresh(*, now: datetime | None = None, limit: int | None = None) -> UsersRefreshResult:
    """Recompute the learned vectors (active `user_learned` version, its stored encoder)
    of shoppers with product events after the version's training checkpoint, from their
    whole consenting history. Idempotent: a shopper whose vector was computed from the
    same interactions is skipped, so a second run writes nothing. A shopper whose newest
    product event opts out loses their learned vector (no personalisation, SPEC §4)."""
    started = time.monotonic()
    enc = profiles_selectors.learned_encoder(kind="user_learned")
    if enc is None:
        return UsersRefreshResult(version=None, checked=0, written=0, seconds=time.monotonic() - started)
    users = sorted(source.users_with_events_after(enc.checkpoint))
    if limit is not None:
        users = users[:limit]
    if not users:
        return UsersRefreshResult(version=enc.version, checked=0, written=0, seconds=time.monotonic() - started)
    tm = artifact_load(enc.artifact, device="cpu")
    stored = profiles_selectors.learned_vector_hashes(kind="user_learned", version=enc.version, keys=users)
    at = (now or datetime.now(UTC)) + timedelta(milliseconds=1)
    vectors: dict[str, np.ndarray] = {}
    hashes: dict[str, str] = {}
    opted_out: list[str] = []
    for user in users:
        events = source.user_events(user)
        if source.opted_out_users(events):
            if user in stored:
                opted_out.append(user)
            continue
        xs = [x for x in interactions_from_events(events) if x.product_id in tm.vocab.item_index]
        h = _user_hash(xs)
        if not xs or stored.get(user) == h:
            continue
        feats = shopper_features(xs, tm.catalog, tm.vocab, at=at.timestamp())
        vectors[user] = shopper_vectors(tm, feats[user])[0]
        hashes[user] = h
    written = 0
    if vectors:
        written = profiles_services.learned_embeddings_write(
            kind="user_learned", version=enc.version, vectors=vectors, activate=False, model=MODEL_NAME, hashes=hashes
        )
    removed = profiles_services.learned_embeddings_delete(kind="user_learned", version=enc.version, keys=opted_out)
    return UsersRefreshResult(
        version=enc.version, checked=len(users), written=written, seconds=time.monotonic() - started, removed=removed
    )
