"""Celery tasks of the event log: thin wrappers over projections."""

from __future__ import annotations

from celery import shared_task

from . import projections


@shared_task(name="eventlog.catch_up_projections", time_limit=120, soft_time_limit=100)
def catch_up_projections() -> dict[str, int]:
    """Safety net beside the consumer process: bounded work, skips projections already
    being run elsewhere (advisory lock)."""
    return projections.catch_up_all(max_seconds=60)


@shared_task(name="eventlog.rebuild_projection", time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def rebuild_projection(name: str) -> int:
    return projections.rebuild(projections.get_projection(name))
