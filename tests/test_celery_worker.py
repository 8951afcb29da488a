"""The Celery app works end to end with a real worker process and the embedded
filesystem broker: the projection safety-net task advances a projection."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from adplatform.embedded import filesystem_broker_options
from behaviour.models import UserActivity
from behaviour.services import events_ingest

from .conftest import behaviour_event

pytestmark = pytest.mark.django_db(transaction=True)


def _database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}{port}/{db['NAME']}"


def test_catch_up_task_runs_in_a_real_worker(tmp_path: Path) -> None:
    # given events in the log that no projection has applied
    events_ingest(raw_events=[behaviour_event(user_id=f"w{i}") for i in range(5)])
    assert UserActivity.objects.count() == 0
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "ADPLATFORM_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "adplatform.settings.test",
    }
    env.pop("CELERY_BROKER_URL", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "adplatform", "worker", "-c", "1", "-P", "solo", "--loglevel", "INFO"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # when the task is sent through the same filesystem broker
        client = Celery("adplatform-test", broker="filesystem://")
        client.conf.broker_transport_options = filesystem_broker_options(tmp_path)
        client.send_task("eventlog.catch_up_projections")
        # then the worker applies the events
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and UserActivity.objects.count() < 5:
            time.sleep(0.5)
        assert UserActivity.objects.count() == 5
    finally:
        worker.terminate()
        out, _ = worker.communicate(timeout=30)
    assert "eventlog.catch_up_projections" in out
