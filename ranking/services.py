"""Writes of the ranking app: ad delivery history that did not come through /rank (imported
or generated exposures appended as ranking events), and the learning pipeline's registry
(train a version, promote it against the champion, roll back, offline evaluation).

torch and the training code are imported inside the learning services, so importing this
module stays light for the web process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction

from adplatform.eventlog.services import NewEvent, append_events

from .events import AD_CLICKED, AD_IMPRESSED, CONVERSION_ATTRIBUTED, decision_stream

_EXPOSURE_NS = uuid.UUID("6f1c3c1e-6a4b-4f0e-9a55-0d7f1a2b3c4d")


@dataclass(frozen=True)
class AdExposure:
    """One ad shown to a shopper in imported or generated history.

    `exposure_key` must be stable across re-runs (e.g. "taobao:<row number>"): event ids
    are derived from it, so importing the same history twice stores nothing new."""

    exposure_key: str
    user_id: str
    at: datetime
    creative_id: int
    campaign_id: int
    advertiser_id: int
    placement: str
    position: int = 1
    page_type: str | None = None
    clicked_at: datetime | None = None
    order_id: str | None = None
    converted_at: datetime | None = None
    revenue: Decimal | None = None
    currency: str = "USD"
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExposureImportResult:
    stored: int
    duplicates: int


def exposure_request_id(exposure_key: str) -> str:
    return "hist-" + uuid.uuid5(_EXPOSURE_NS, exposure_key).hex


def _exposure_events(x: AdExposure, source: str) -> list[NewEvent]:
    request_id = exposure_request_id(x.exposure_key)
    stream = decision_stream(request_id)
    base = {
        "request_id": request_id,
        "creative_id": x.creative_id,
        "campaign_id": x.campaign_id,
        "advertiser_id": x.advertiser_id,
        "placement": x.placement,
        "position": x.position,
        "pricing_model": "cpc",
        "charge": "0",
        "currency": x.currency,
        "segment": None,
    }
    if x.page_type is not None:
        base["page_type"] = x.page_type
    if x.context:
        base["context"] = x.context
    meta = {"source": source}
    out = [
        NewEvent(
            type=AD_IMPRESSED.name,
            stream=stream,
            data=dict(base),
            occurred_at=x.at,
            event_id=uuid.uuid5(_EXPOSURE_NS, f"{x.exposure_key}/impression"),
            user_key=x.user_id,
            meta=meta,
        )
    ]
    if x.clicked_at is not None:
        click_id = uuid.uuid5(_EXPOSURE_NS, f"{x.exposure_key}/click")
        out.append(
            NewEvent(
                type=AD_CLICKED.name,
                stream=stream,
                data=dict(base),
                occurred_at=x.clicked_at,
                event_id=click_id,
                user_key=x.user_id,
                meta=meta,
            )
        )
        if x.converted_at is not None and x.revenue is not None:
            conv = {k: v for k, v in base.items() if k not in ("position", "pricing_model")}
            conv.update(order_id=x.order_id or "", revenue=str(x.revenue), click_event_id=str(click_id))
            out.append(
                NewEvent(
                    type=CONVERSION_ATTRIBUTED.name,
                    stream=stream,
                    data=conv,
                    occurred_at=x.converted_at,
                    event_id=uuid.uuid5(_EXPOSURE_NS, f"{x.exposure_key}/conversion"),
                    user_key=x.user_id,
                    meta=meta,
                )
            )
    return out


def ad_exposures_import(*, exposures: Iterable[AdExposure], source: str = "import") -> ExposureImportResult:
    """Append the exposures' AdImpressed / AdClicked / ConversionAttributed events in one
    transaction; idempotent by `exposure_key`. Charges are "0": history is not billed."""
    events = [e for x in exposures for e in _exposure_events(x, source)]
    if not events:
        return ExposureImportResult(stored=0, duplicates=0)
    with transaction.atomic():
        result = append_events(events)
    return ExposureImportResult(stored=result.count, duplicates=len(events) - result.count)


# ---------------------------------------------------------------------------------------
# learning pipeline: train, promote (champion/challenger), roll back, evaluate

ERROR_UNKNOWN_VERSION = "No model version with this name."
ERROR_NO_CHAMPION = "There is no champion to roll back."
ERROR_NO_ROLLBACK_TARGET = "No earlier champion to roll back to."
ERROR_NOT_BETTER = "The challenger does not beat the champion on the same holdout."
ERROR_MODE = "mode must be one of: full, incremental."
ERROR_ARTIFACT_PRUNED = "This version's artifact was pruned from the registry; retrain instead."
CHAMPION_SLOT = "ctr"


@dataclass(frozen=True)
class TrainResult:
    skipped: bool
    reason: str
    version: str | None = None
    promoted: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    champion_metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class PromotionResult:
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)
    champion_metrics: dict[str, Any] | None = None


def _beats(challenger: dict[str, Any], champion: dict[str, Any] | None) -> tuple[bool, str]:
    """The promotion rule: higher holdout AUC than the champion's on the same holdout, by at
    least RANKING_PROMOTION_MIN_AUC_GAIN (ADR 0052)."""
    from django.conf import settings

    auc = challenger.get("auc")
    if auc is None or (isinstance(auc, float) and auc != auc):
        return False, "challenger AUC is undefined on its holdout"
    if champion is None:
        return True, "no champion yet"
    if champion.get("auc") is None:
        return True, "champion AUC is undefined on this holdout"
    gain = float(settings.RANKING_PROMOTION_MIN_AUC_GAIN)
    if float(auc) > float(champion["auc"]) + gain:
        return True, f"AUC {float(auc):.4f} > champion {float(champion['auc']):.4f} + {gain}"
    return False, f"AUC {float(auc):.4f} does not beat champion {float(champion['auc']):.4f} + {gain}"


def _switch_champion(version: Any, *, now: datetime) -> Any:
    """Point the slot at `version` (inside the caller's transaction). Returns the previous
    champion row or None."""
    from .models import ChampionPointer, ModelVersion

    pointer = ChampionPointer.objects.select_for_update().filter(slot=CHAMPION_SLOT).first()
    previous = None
    if pointer is not None:
        previous = pointer.version
        if previous.pk != version.pk:
            ModelVersion.objects.filter(pk=previous.pk).update(status=ModelVersion.Status.RETIRED)
        pointer.version = version
        pointer.changed_at = now
        pointer.save(update_fields=["version", "changed_at"])
    else:
        ChampionPointer.objects.create(slot=CHAMPION_SLOT, version=version, changed_at=now)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.CHAMPION, promoted_at=now)
    return previous


def _current_champion() -> Any:
    from .models import ChampionPointer

    pointer = ChampionPointer.objects.select_related("version").filter(slot=CHAMPION_SLOT).first()
    return pointer.version if pointer is not None else None


def _model_event(type_: str, data: dict[str, Any], now: datetime) -> NewEvent:
    from .events import model_stream

    return NewEvent(type=type_, stream=model_stream(CHAMPION_SLOT), data=data, occurred_at=now)


def _promotion_events(
    version: Any,
    ok: bool,
    reason: str,
    metrics_: dict[str, Any],
    champion: Any,
    champion_metrics: dict[str, Any] | None,
    now: datetime,
) -> list[NewEvent]:  # noqa: E501
    from .events import MODEL_PROMOTED, MODEL_PROMOTION_REFUSED

    if ok:
        return [
            _model_event(
                MODEL_PROMOTED.name,
                {
                    "version": version.name,
                    "previous": champion.name if champion is not None else None,
                    "reason": reason,
                    "metrics": metrics_,
                    "champion_metrics": champion_metrics,
                },
                now,
            )
        ]
    return [
        _model_event(
            MODEL_PROMOTION_REFUSED.name,
            {
                "version": version.name,
                "champion": champion.name if champion is not None else None,
                "reason": reason,
                "metrics": metrics_,
                "champion_metrics": champion_metrics,
            },
            now,
        )
    ]


def model_train(
    *,
    kind: str = "din_esmm",
    mode: str = "full",
    device: str | None = None,
    seed: int = 0,
    promote: bool = True,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a model version from the event log and register it; promote it when it beats
    the champion on the challenger's holdout (the champion is re-evaluated on it).

    Skipped (nothing written) when the log has no ad events newer than the latest version
    (unless `force`) or too few examples. `mode="incremental"` trains on the newest
    RANKING_INCREMENTAL_WINDOW_DAYS of impressions (counted back from the newest). The
    version and the promotion decision are written in one transaction with their
    ModelTrained / ModelPromoted events."""
    import hashlib
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from . import training
    from .events import MODEL_TRAINED
    from .models import ModelVersion
    from .nn import ERROR_MODEL_KIND, MODEL_KINDS, TrainedModel

    if kind not in MODEL_KINDS:
        raise ValueError(ERROR_MODEL_KIND)
    if mode not in ("full", "incremental"):
        raise ValueError(ERROR_MODE)
    device = device or str(settings.ML_DEVICE)
    ad_events = training.ad_event_count()
    latest = ModelVersion.objects.filter(kind=kind).order_by("-id").first()
    if not force and latest is not None and int(latest.train_config.get("ad_events", -1)) >= ad_events:
        reason = f"no new ad events since {latest.name}"
        training._log(progress, f"skipped: {reason}")
        return TrainResult(skipped=True, reason=reason)
    t0 = time.monotonic()
    ex = training.examples_from_log(progress=progress)
    if mode == "incremental" and len(ex):
        # the newest window of the log (not of the wall clock: imported history may be old);
        # features of the window still see all behaviour before it
        start = float(ex.at.max()) - timedelta(days=float(settings.RANKING_INCREMENTAL_WINDOW_DAYS)).total_seconds()
        ex = ex.subset(np.flatnonzero(ex.at >= start))
    split = training.split_examples(ex)
    minimum = int(settings.RANKING_MIN_EXAMPLES)
    if len(ex) < minimum or len(split.test) == 0 or len(split.validation) == 0 or ex.click.sum() == 0:
        reason = f"{len(ex)} examples with {int(ex.click.sum())} clicks (need {minimum} and clicks in every split)"
        training._log(progress, f"skipped: {reason}")
        return TrainResult(skipped=True, reason=reason)
    fitted = training.fit_and_score(kind, ex, split, device=device, seed=seed, progress=progress)
    champion = _current_champion()
    champion_metrics = None
    if champion is not None:
        champion_model = TrainedModel.loads(bytes(champion.artifact))
        champion_metrics = training.score_holdout(champion_model, ex, split.test)
        champion_metrics["version"] = champion.name
    ok, reason = _beats(fitted.metrics, champion_metrics)
    blob = fitted.model.dumps()
    now = timezone.now()
    with transaction.atomic():
        number = (ModelVersion.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
        version = ModelVersion.objects.create(
            name=f"{kind}-{number}",
            kind=kind,
            mode=mode,
            device=fitted.config["device"],
            seed=seed,
            data_from=training.epoch_to_dt(float(ex.at[split.train].min()) if len(split.train) else 0.0),
            data_to=training.epoch_to_dt(split.test_to),
            validation_from=training.epoch_to_dt(split.validation_from),
            test_from=training.epoch_to_dt(split.test_from),
            log_position=ex.last_position,
            n_train=len(split.train),
            n_validation=len(split.validation),
            n_test=len(split.test),
            feature_spec=fitted.model.spec.to_json(),
            train_config={**fitted.config, "mode": mode, "ad_events": ad_events},
            metrics=fitted.metrics,
            comparison=champion_metrics or {},
            artifact=blob,
            artifact_sha256=hashlib.sha256(blob).hexdigest(),
            artifact_bytes=len(blob),
            train_seconds=round(time.monotonic() - t0, 3),
            created_at=now,
        )
        events = [
            _model_event(
                MODEL_TRAINED.name,
                {
                    "version": version.name,
                    "kind": kind,
                    "mode": mode,
                    "device": version.device,
                    "data_from": version.data_from.isoformat() if version.data_from else None,
                    "data_to": version.data_to.isoformat() if version.data_to else None,
                    "test_from": version.test_from.isoformat() if version.test_from else None,
                    "log_position": version.log_position,
                    "n_train": version.n_train,
                    "n_validation": version.n_validation,
                    "n_test": version.n_test,
                    "metrics": fitted.metrics,
                    "artifact_sha256": version.artifact_sha256,
                },
                now,
            )
        ]
        promoted = False
        if promote:
            events += _promotion_events(version, ok, reason, fitted.metrics, champion, champion_metrics, now)
            if ok:
                _switch_champion(version, now=now)
                promoted = True
            else:
                ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.REJECTED)
        append_events(events)
    training._log(
        progress,
        f"registered {version.name}: test AUC {fitted.metrics['auc']}, "
        + ("promoted" if promoted else f"not promoted ({reason})"),
    )
    return TrainResult(
        skipped=False,
        reason=reason,
        version=version.name,
        promoted=promoted,
        metrics=fitted.metrics,
        champion_metrics=champion_metrics,
    )


def model_promote(*, version: str, actor: str, progress: Callable[[str], None] | None = None) -> PromotionResult:
    """Promote a registered version by hand (admin, command). The same rule as after
    training: the current champion is re-evaluated on the candidate's own holdout (rebuilt
    from the log) and the candidate must beat it there; otherwise nothing changes."""
    from django.utils import timezone

    from . import training
    from .models import ModelVersion
    from .nn import TrainedModel

    candidate = ModelVersion.objects.filter(name=version).first()
    if candidate is None:
        raise LookupError(ERROR_UNKNOWN_VERSION)
    if candidate.artifact_pruned_at is not None:
        raise LookupError(ERROR_ARTIFACT_PRUNED)
    champion = _current_champion()
    if champion is not None and champion.pk == candidate.pk:
        return PromotionResult(version=version, promoted=False, reason="already the champion")
    challenger_metrics: dict[str, Any] = dict(candidate.metrics)
    champion_metrics = None
    if champion is not None:
        ex = training.examples_from_log(progress=progress)
        lo = candidate.test_from.timestamp() if candidate.test_from else 0.0
        hi = candidate.data_to.timestamp() if candidate.data_to else float("inf")
        idx = np.flatnonzero((ex.at >= lo) & (ex.at <= hi))
        challenger_metrics = training.score_holdout(TrainedModel.loads(bytes(candidate.artifact)), ex, idx)
        champion_metrics = training.score_holdout(TrainedModel.loads(bytes(champion.artifact)), ex, idx)
        champion_metrics["version"] = champion.name
    ok, reason = _beats(challenger_metrics, champion_metrics)
    now = timezone.now()
    with transaction.atomic():
        events = _promotion_events(candidate, ok, reason, challenger_metrics, champion, champion_metrics, now)
        events[0].data["actor"] = actor
        if ok:
            _switch_champion(candidate, now=now)
        append_events(events)
    return PromotionResult(
        version=version,
        promoted=ok,
        reason=reason,
        metrics=challenger_metrics,
        champion_metrics=champion_metrics,
    )


def model_rollback(*, actor: str) -> str:
    """Withdraw the champion and reinstate the most recently promoted earlier champion.
    Returns the name of the champion after the rollback."""
    from django.utils import timezone

    from .events import MODEL_ROLLED_BACK
    from .models import ModelVersion

    now = timezone.now()
    with transaction.atomic():
        current = _current_champion()
        if current is None:
            raise LookupError(ERROR_NO_CHAMPION)
        target = (
            ModelVersion.objects.filter(
                status=ModelVersion.Status.RETIRED, promoted_at__isnull=False, artifact_pruned_at__isnull=True
            )
            .exclude(pk=current.pk)
            .order_by("-promoted_at", "-id")
            .first()
        )
        if target is None:
            raise LookupError(ERROR_NO_ROLLBACK_TARGET)
        _switch_champion(target, now=now)
        ModelVersion.objects.filter(pk=current.pk).update(status=ModelVersion.Status.ROLLED_BACK)
        append_events(
            [_model_event(MODEL_ROLLED_BACK.name, {"version": current.name, "to": target.name, "actor": actor}, now)]
        )
    return str(target.name)


def model_artifacts_prune(*, now: datetime | None = None) -> list[str]:
    """Registry retention: drop the artifact bytes of versions nobody can serve again — all
    but the RANKING_KEEP_ROLLBACK_TARGETS most recently promoted earlier champions, all but
    the RANKING_KEEP_CHALLENGERS newest refused / unpromoted versions, and rolled-back ones.
    The champion is never touched; rows keep their metrics and data window (the registry's
    history), and one ModelArtifactsPruned event records what went. Safe to run twice.
    Returns the pruned version names."""
    from django.conf import settings
    from django.utils import timezone

    from .events import MODEL_ARTIFACTS_PRUNED
    from .models import ModelVersion

    now = now or timezone.now()
    status = ModelVersion.Status
    with transaction.atomic():
        champion = _current_champion()
        live = ModelVersion.objects.filter(artifact_pruned_at__isnull=True)
        if champion is not None:
            live = live.exclude(pk=champion.pk)
        keep: set[int] = set()
        earlier = live.filter(status=status.RETIRED).order_by("-promoted_at", "-id")
        keep.update(earlier.values_list("pk", flat=True)[: settings.RANKING_KEEP_ROLLBACK_TARGETS])
        challengers = live.filter(status__in=[status.REJECTED, status.CANDIDATE]).order_by("-created_at", "-id")
        keep.update(challengers.values_list("pk", flat=True)[: settings.RANKING_KEEP_CHALLENGERS])
        doomed = list(live.exclude(pk__in=keep).select_for_update().values_list("pk", "name", "artifact_bytes"))
        if not doomed:
            return []
        ModelVersion.objects.filter(pk__in=[pk for pk, _, _ in doomed]).update(artifact=b"", artifact_pruned_at=now)
        names = [name for _, name, _ in doomed]
        append_events(
            [_model_event(MODEL_ARTIFACTS_PRUNED.name, {"versions": names, "bytes": sum(b for *_, b in doomed)}, now)]
        )
    return names


@dataclass(frozen=True)
class EvaluationReport:
    n_examples: int
    n_train: int
    n_validation: int
    n_test: int
    test_from: datetime | None
    test_to: datetime | None
    models: dict[str, dict[str, Any]]  # kind → holdout metrics
    champion: dict[str, Any] | None  # the current champion on the same holdout
    retrieval: dict[str, Any] | None = None  # recall@K / NDCG@K of retrieval on its own time split


def offline_evaluate(
    *,
    kinds: tuple[str, ...] = ("popularity", "logreg", "din_esmm"),
    device: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Offline evaluation on a time-based split of the log: every model kind trained on the
    same train part and scored on the same holdout, plus the current champion re-evaluated
    there. Registers nothing."""
    from django.conf import settings

    from . import training
    from .nn import TrainedModel

    device = device or str(settings.ML_DEVICE)
    ex = training.examples_from_log(progress=progress)
    split = training.split_examples(ex)
    results: dict[str, dict[str, Any]] = {}
    if len(split.test) and len(split.validation) and ex.click.sum() > 0:
        for kind in kinds:
            results[kind] = training.fit_and_score(kind, ex, split, device=device, seed=seed, progress=progress).metrics
    champion = _current_champion()
    champion_metrics = None
    if champion is not None and len(split.test):
        champion_metrics = training.score_holdout(TrainedModel.loads(bytes(champion.artifact)), ex, split.test)
        champion_metrics["version"] = champion.name
    retrieval = _retrieval_evaluate(device=device, seed=seed)
    return EvaluationReport(
        n_examples=len(ex),
        n_train=len(split.train),
        n_validation=len(split.validation),
        n_test=len(split.test),
        test_from=training.epoch_to_dt(split.test_from),
        test_to=training.epoch_to_dt(split.test_to),
        models=results,
        champion=champion_metrics,
        retrieval=retrieval,
    )


def _retrieval_evaluate(*, device: str, seed: int) -> dict[str, Any] | None:
    """Retrieval on a time split of the product interactions: a two-tower model trained on
    the part before the split (nothing published) beside co-visitation and popularity, and
    the served two-tower version re-scored on the same queries. None without interactions."""
    from profiles import selectors as profiles_selectors

    from .retrieval import services as retrieval

    try:
        fresh = retrieval.retrieval_train(device=device, seed=seed, publish=False)
    except ValueError:
        return None
    out: dict[str, Any] = dict(sorted(fresh.metrics.items()))
    served = profiles_selectors.learned_encoder()
    if served is not None:
        try:
            champion = retrieval.retrieval_evaluate(artifact=served.artifact)
        except ValueError:
            champion = {}
        for key, value in champion.items():
            if key.startswith("two_tower."):
                out[f"served:{served.version}.{key.removeprefix('two_tower.')}"] = value
    return out
