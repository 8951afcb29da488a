"""Celery tasks of the tracking app: thin, idempotent wrappers over the services (the
schedules are declared in adplatform/celery.py)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import services


@shared_task(name="tracking.frequency_prune", time_limit=600, soft_time_limit=570)
def frequency_prune() -> int:
    """Frequency rows older than TRACKING_FREQUENCY_RETENTION_SECONDS go (safe to run twice)."""
    before = timezone.now() - timedelta(seconds=settings.TRACKING_FREQUENCY_RETENTION_SECONDS)
    return services.frequency_prune(before=before)
