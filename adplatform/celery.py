"""The Celery app. Periodic schedules are declared here and nowhere else."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "adplatform.settings.local")

app = Celery("adplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["ranking.retrieval"])  # retrieval tasks live in a sub-package of ranking

# One place for every periodic schedule (STYLE §6).
app.conf.beat_schedule = {
    "eventlog-catch-up-projections": {
        "task": "eventlog.catch_up_projections",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    # profiles: embeddings of new/changed products, creatives and active shoppers
    "profiles-refresh-embeddings": {
        "task": "profiles.embeddings_refresh",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "profiles-recompute-segments": {
        "task": "profiles.segments_recompute",
        "schedule": crontab(minute=15),
        "options": {"expires": 3600.0},
    },
    # ranking: incremental retrain hourly (skipped when no new data), full retrain nightly
    "ranking-train-incremental": {
        "task": "ranking.train_incremental",
        "schedule": crontab(minute=30),
        "options": {"queue": "ml", "expires": 3600.0},
    },
    "ranking-train-full": {
        "task": "ranking.train_full",
        "schedule": crontab(hour=3, minute=0),
        "options": {"queue": "ml", "expires": 6 * 3600.0},
    },
    # ranking: registry retention (artifact bytes of versions that can no longer be served)
    "ranking-models-prune": {
        "task": "ranking.models_prune",
        "schedule": crontab(hour=4, minute=15),
        "options": {"expires": 3600.0},
    },
    # tracking: frequency rows older than the retention (longer than any cap window)
    "tracking-frequency-prune": {
        "task": "tracking.frequency_prune",
        "schedule": crontab(minute=45),
        "options": {"expires": 3600.0},
    },
    # ranking.retrieval: nightly two-tower retrain, served only if it beats the current version
    "ranking-retrieval-train": {
        "task": "ranking.retrieval_train",
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": "ml", "expires": 6 * 3600.0},
    },
    # ranking.retrieval: learned shopper vectors of shoppers with new activity (between retrains)
    "ranking-retrieval-users-refresh": {
        "task": "ranking.retrieval_users_refresh",
        "schedule": 600.0,
        "options": {"queue": "ml", "expires": 600.0},
    },
}
