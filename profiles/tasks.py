"""Celery tasks of the profiles app: thin, idempotent wrappers over the services (the
schedules are declared in adplatform/celery.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from . import services


@shared_task(name="profiles.embeddings_refresh", time_limit=1800, soft_time_limit=1740)
def embeddings_refresh() -> dict[str, Any]:
    """Only new/changed texts and changed profiles are encoded: a run with nothing new is cheap."""
    return asdict(services.embeddings_refresh())


@shared_task(name="profiles.segments_recompute", time_limit=1800, soft_time_limit=1740)
def segments_recompute() -> dict[str, Any]:
    result = services.segments_recompute()
    return {"run_id": result.run_id, "users": result.users, "k": result.k, "seconds": result.seconds}
