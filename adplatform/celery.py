"""The Celery app. Periodic schedules are declared here and nowhere else."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings.local")

app = Celery("adplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One place for every periodic schedule (STYLE §6).
app.conf.beat_schedule = {
    "eventlog-catch-up-projections": {
        "task": "eventlog.catch_up_projections",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
}
