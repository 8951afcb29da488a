"""The grouped decision writer (ADR 0058): on the live clock /rank hands its decision to a
per-process writer thread; every decision lands in the log exactly once, several per
transaction, without the request waiting for the append."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.db import connection

from adplatform.access import scopes
from adplatform.eventlog.models import Event
from delivery import decisionlog
from ranking.events import AD_DECISION_MADE

from ..conftest import auth

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _writer_stopped_after() -> Iterator[None]:
    yield
    decisionlog.writer_stop()  # its connection must not outlive the test database


def test_concurrent_decisions_are_appended_once_each_in_shared_transactions(
    world: Any, http: httpx.Client, make_key: Any, settings: Any
) -> None:
    settings.DELIVERY_DECISION_LOG_GROUPED = True
    # given a running campaign
    world.placement("home_top", slots=1)
    adv = world.advertiser()
    world.creative(adv, world.campaign(adv))
    key = make_key(scopes.ADS_RANK)
    body = {"user_id": "u-1", "placement": "home_top", "limit": 1, "context": {"page_type": "home"}}

    def call(i: int) -> str:
        r = http.post("/api/v1/rank", json={**body, "user_id": f"u-{i}"}, headers=auth(key))
        assert r.status_code == 200, r.text
        return str(r.json()["request_id"])

    # when 60 shoppers are ranked from 8 threads
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(call, range(60)))
    # then the writer appends every decision, without anyone flushing
    deadline = time.monotonic() + 10
    logged: list[tuple[str, int]] = []
    while time.monotonic() < deadline:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT data->>'request_id', tx_id::text FROM eventlog_event WHERE type = %s", [AD_DECISION_MADE.name]
            )
            logged = cur.fetchall()
        if len(logged) >= len(ids):
            break
        time.sleep(0.1)
    assert sorted(r for r, _ in logged) == sorted(ids)  # each exactly once
    # and several decisions shared a transaction (one COPY and commit for many)
    assert len({tx for _, tx in logged}) < len(ids)


def test_flush_appends_what_is_queued_on_the_callers_thread(world: Any, http: httpx.Client, make_key: Any,
                                                           settings: Any, monkeypatch: Any) -> None:  # fmt: skip
    settings.DELIVERY_DECISION_LOG_GROUPED = True
    monkeypatch.setattr(decisionlog, "_ensure_writer", lambda: None)  # no writer thread: only flush appends
    world.placement("home_top", slots=1)
    adv = world.advertiser()
    world.creative(adv, world.campaign(adv))
    key = make_key(scopes.ADS_RANK)
    r = http.post("/api/v1/rank", json={"user_id": "u-1", "placement": "home_top", "context": {"page_type": "home"}},
                  headers=auth(key))  # fmt: skip
    assert r.status_code == 200
    assert not Event.objects.filter(type=AD_DECISION_MADE.name).exists()  # queued, not appended yet
    assert decisionlog.flush() == 1
    assert Event.objects.get(type=AD_DECISION_MADE.name).data["request_id"] == r.json()["request_id"]
