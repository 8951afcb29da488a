"""The training pipeline's steps (read the log → examples → split → fit → calibrate →
holdout metrics), shared by `ranking.services` (train, promote, evaluate), the Celery tasks
and the commands through those services. Reads only; the registry writes are in services."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.conf import settings

from adplatform.eventlog import selectors as eventlog
from campaigns import selectors as campaigns

from . import metrics
from .dataset import AD_TYPES, DATASET_EVENT_TYPES, Examples, Split, build_examples, time_split
from .events import AD_DECISION_MADE, AD_IMPRESSED
from .features import FeatureSpec, encode
from .selectors import CandidateItem

logger = logging.getLogger("ranking.training")

Progress = Callable[[str], None]


def _log(progress: Progress | None, message: str) -> None:
    logger.info(message)
    if progress is not None:
        progress(message)


class Eta:
    """Progress lines with an ETA for long loops (logs at most every few seconds)."""

    def __init__(self, what: str, progress: Progress | None, every: float = 5.0) -> None:
        self.what, self.progress, self.every = what, progress, every
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every or total <= 0:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("nan")
        _log(self.progress, f"{self.what}: {done}/{total} ({100 * done / total:.0f}%), ETA {eta:.0f}s")


def half_life_lambda() -> float:
    return math.log(2) / (float(settings.PROFILES_HALF_LIFE_DAYS) * 86400.0)


def ad_event_count() -> int:
    """How much ad history the log holds (a retrain is skipped when it has not grown)."""
    return eventlog.count_events(types=sorted(AD_TYPES))


def creative_items() -> dict[int, CandidateItem]:
    """Creative → candidate item (product facts are filled point in time by the dataset)."""
    rows = campaigns.creative_list(advertiser_id=None).values_list(
        "id", "campaign_id", "advertiser_id", "product_id", "headline", "body"
    )
    return {
        int(cid): CandidateItem(
            creative_id=int(cid),
            campaign_id=int(camp),
            advertiser_id=int(adv),
            product_id=pid or None,
            text=f"{headline} {body}".strip(),
        )
        for cid, camp, adv, pid, headline, body in rows
    }


def examples_from_log(*, since: datetime | None = None, progress: Progress | None = None) -> Examples:
    """Read the log (in pages) and build point-in-time examples. Only decisions something
    was shown from are read: examples come from impressions, and a decision is read only
    through its impressions (they share the stream "decision:<request_id>"), while /rank
    logs one per request, most never impressed (at 200 req/s millions a day, each holding
    its candidates' columns). Postgres filters them, so they are neither sent nor parsed."""
    others = sorted(DATASET_EVENT_TYPES - {AD_DECISION_MADE.name})
    total = eventlog.count_events(types=others)  # the impressed decisions come on top, fewer than impressions
    eta = Eta("reading the event log", progress)
    # build_examples orders by occurrence itself: the decisions can come in a read of their own
    reads = (
        eventlog.iter_all(types=others, batch=20_000),
        eventlog.iter_all(types=[AD_DECISION_MADE.name], batch=20_000, stream_has=AD_IMPRESSED.name),
    )
    events: list[eventlog.StoredEvent] = []
    for read in reads:
        for ev in read:
            if len(events) % 20_000 == 0:
                eta(len(events), total)
            events.append(ev)
    _log(progress, f"read {len(events)} events; building examples")
    return build_examples(
        events,  # type: ignore[arg-type]  # StoredEvent has every LogEvent field
        creatives=creative_items(),
        lam=half_life_lambda(),
        click_window_seconds=float(settings.RANKING_CLICK_WINDOW_SECONDS),
        since=since,
        progress=Eta("building examples", progress),
    )


def holdout_metrics(
    y_click: np.ndarray,
    p_click: np.ndarray,
    users: list[str],
    *,
    y_conv: np.ndarray | None = None,
    p_conv: np.ndarray | None = None,
    p_click_raw: np.ndarray | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": int(len(y_click)),
        "clicks": int(y_click.sum()),
        "auc": metrics.auc(y_click, p_click),
        "gauc": metrics.gauc(y_click, p_click, users),
        "logloss": metrics.logloss(y_click, p_click),
        "calibration_error": metrics.calibration_error(y_click, p_click),
        "mean_p_click": float(np.mean(p_click)) if len(p_click) else float("nan"),
        "ctr": float(np.mean(y_click)) if len(y_click) else float("nan"),
    }
    if p_click_raw is not None:
        out["calibration_error_uncalibrated"] = metrics.calibration_error(y_click, p_click_raw)
        out["logloss_uncalibrated"] = metrics.logloss(y_click, p_click_raw)
    if y_conv is not None and p_conv is not None:
        out["conversions"] = int(y_conv.sum())
        out["conversion_auc"] = metrics.auc(y_conv, p_conv)
        out["conversion_logloss"] = metrics.logloss(y_conv, p_conv)
    return json_safe(out)


def json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """Floats rounded, NaN (undefined, e.g. AUC with one class) as None: JSON has no NaN."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, float):
            out[k] = None if math.isnan(v) or math.isinf(v) else round(v, 6)
        else:
            out[k] = v
    return out


@dataclass
class Fitted:
    kind: str
    model: Any  # ranking.nn.TrainedModel
    metrics: dict[str, Any]
    report: Any  # ranking.nn.FitReport
    config: dict[str, Any] = field(default_factory=dict)


def fit_and_score(
    kind: str,
    ex: Examples,
    split: Split,
    *,
    device: str,
    seed: int,
    epochs: int | None = None,
    spec: FeatureSpec | None = None,
    progress: Progress | None = None,
) -> Fitted:
    """Fit on the train part, stop early and calibrate on validation, score the holdout."""
    from . import nn

    spec = spec or FeatureSpec(buckets=int(settings.RANKING_HASH_BUCKETS))
    plan = nn.device_plan(device, threads=int(settings.RANKING_TRAIN_THREADS))
    cfg = nn.TrainConfig(epochs=epochs or int(settings.RANKING_TRAIN_EPOCHS), seed=seed)
    enc = encode(ex.features, spec)
    tr, va, te = enc.take(split.train), enc.take(split.validation), enc.take(split.test)
    _log(progress, f"{kind}: {len(tr)} train / {len(va)} validation / {len(te)} test on {plan.device}")
    module, report = nn.fit(
        kind,
        spec,
        tr,
        ex.click[split.train],
        ex.conversion[split.train],
        validation=(va, ex.click[split.validation]),
        plan=plan,
        cfg=cfg,
        progress=lambda m: _log(progress, m),
    )
    model = nn.TrainedModel(kind=kind, spec=spec, module=module)
    raw_click, _ = model.predict_raw(te)
    model.calibrate(va, ex.click[split.validation], ex.conversion[split.validation])
    p_click, p_conv = model.predict(te)
    users = [ex.user[i] for i in split.test]
    m = holdout_metrics(
        ex.click[split.test],
        p_click,
        users,
        y_conv=ex.conversion[split.test],
        p_conv=p_conv,
        p_click_raw=raw_click,
    )
    m["train_samples_per_second"] = round(report.samples_per_second, 1) if report.seconds else None
    config = {
        "epochs": cfg.epochs,
        "epochs_run": report.epochs_run,
        "best_epoch": report.best_epoch,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size or plan.batch_size,
        "device": plan.device,
        "threads": plan.threads,
        "autocast": str(plan.autocast_dtype) if plan.autocast_dtype else None,
        "seed": seed,
    }
    return Fitted(kind=kind, model=model, metrics=m, report=report, config=config)


def score_holdout(model: Any, ex: Examples, idx: np.ndarray) -> dict[str, Any]:
    """A stored model (any feature spec) re-evaluated on these holdout examples."""
    enc = encode([ex.features[i] for i in idx], model.spec)
    p_click, p_conv = model.predict(enc)
    return holdout_metrics(
        ex.click[idx],
        p_click,
        [ex.user[i] for i in idx],
        y_conv=ex.conversion[idx],
        p_conv=p_conv,
    )


def split_examples(ex: Examples) -> Split:
    return time_split(
        ex.at, validation=float(settings.RANKING_VALIDATION_SHARE), test=float(settings.RANKING_TEST_SHARE)
    )


def epoch_to_dt(value: float) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None
