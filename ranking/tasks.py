"""Celery tasks of the learning pipeline (queue `ml`, routed in settings): thin, idempotent
(a retrain with no new ad events is skipped), explicit names and time limits."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from . import services

logger = logging.getLogger("ranking.tasks")


def _result(r: services.TrainResult) -> dict[str, Any]:
    return {"skipped": r.skipped, "reason": r.reason, "version": r.version, "promoted": r.promoted}


@shared_task(name="ranking.train_incremental", soft_time_limit=50 * 60, time_limit=55 * 60, acks_late=True)
def train_incremental(kind: str = "din_esmm") -> dict[str, Any]:
    """Hourly: retrain on the recent window when new ad events arrived."""
    return _result(services.model_train(kind=kind, mode="incremental", progress=logger.info))


@shared_task(name="ranking.train_full", soft_time_limit=5 * 3600, time_limit=5 * 3600 + 600, acks_late=True)
def train_full(kind: str = "din_esmm") -> dict[str, Any]:
    """Nightly: retrain on the whole log when new ad events arrived."""
    return _result(services.model_train(kind=kind, mode="full", progress=logger.info))


@shared_task(name="ranking.models_prune", soft_time_limit=10 * 60, time_limit=11 * 60)
def models_prune() -> list[str]:
    """Daily: drop artifact bytes the registry can no longer serve (retention settings)."""
    return services.model_artifacts_prune()
