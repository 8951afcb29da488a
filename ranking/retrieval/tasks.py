"""Celery tasks of retrieval: thin wrappers over ranking.retrieval.services (queue `ml`;
schedules in adplatform/celery.py). Registered through `app.autodiscover_tasks(["ranking.retrieval"])`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from . import services


@shared_task(name="ranking.retrieval_train", queue="ml", time_limit=3600, soft_time_limit=3540)
def retrieval_train(device: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Full retrain from the log, served only if it beats the current version on the same
    holdout; a second run on the same log trains the same model (seeded, same version)."""
    outcome = services.retrieval_train_promote(device=device, seed=seed)
    result = outcome.result
    return {
        "version": result.version,
        "promoted": outcome.promoted,
        "reason": outcome.reason,
        "metrics": result.metrics,
        "train_examples": result.train_examples,
        "users_written": result.users_written,
        "items_written": result.items_written,
        "creatives_written": result.creatives_written,
        "seconds": result.seconds,
    }


@shared_task(name="ranking.retrieval_users_refresh", queue="ml", time_limit=900, soft_time_limit=870)
def retrieval_users_refresh() -> dict[str, Any]:
    """Shoppers with new activity since the active version was trained; idempotent."""
    return asdict(services.retrieval_users_refresh())
