"""adplatform project package: settings, urls, Celery app and the platform core
(event log, access keys, API conventions)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
