"""The scheduled retrain runs end to end in a real Celery worker on the `ml` queue."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

from adplatform.embedded import filesystem_broker_options
from ranking.models import ChampionPointer, ModelVersion

from ..test_celery_worker import _database_url
from .conftest import Seeded

pytestmark = pytest.mark.django_db(transaction=True)


def test_scheduled_incremental_retrain_runs_in_a_real_worker(seeded: Seeded, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "ADPLATFORM_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "adplatform.settings.test",
        "ML_DEVICE": "cpu",
        "RANKING_TRAIN_EPOCHS": "1",
        "RANKING_HASH_BUCKETS": "4096",
        "RANKING_MIN_EXAMPLES": "200",
        "RANKING_INCREMENTAL_WINDOW_DAYS": "4",
    }
    env.pop("CELERY_BROKER_URL", None)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "adplatform",
            "worker",
            "-Q",
            "ml",
            "-c",
            "1",
            "-P",
            "solo",
            "--loglevel",
            "INFO",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # when beat's task is sent to the ml queue twice (the second finds no new data)
        client = Celery("adplatform-test", broker="filesystem://")
        client.conf.broker_transport_options = filesystem_broker_options(tmp_path)
        client.send_task("ranking.train_incremental", queue="ml")
        client.send_task("ranking.train_incremental", queue="ml")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not ModelVersion.objects.exists():
            time.sleep(0.5)
        time.sleep(3)
    finally:
        worker.terminate()
        out, _ = worker.communicate(timeout=30)
    # then one version was trained, registered and promoted by the worker, the second skipped
    versions = list(ModelVersion.objects.values_list("name", "mode", "status"))
    assert versions == [("din_esmm-1", "incremental", "champion")], out[-3000:]
    assert ChampionPointer.objects.get(slot="ctr").version.name == "din_esmm-1"
    assert "ranking.train_incremental" in out
    assert "validation AUC" in out  # progress in the worker log
    assert "skipped: no new ad events since din_esmm-1" in out
