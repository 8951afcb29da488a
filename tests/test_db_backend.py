"""The database backend's health check: a connection used within the last second is
trusted (no `SELECT 1` round trip per request); an idle one is pinged, and a dead one is
replaced before the request's first query."""

from __future__ import annotations

import time

import pytest
from django.db import connections

from adplatform.db import base


def _conn() -> base.DatabaseWrapper:
    conn = connections["default"]
    assert isinstance(conn, base.DatabaseWrapper)
    return conn


def _pings(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    real = base.DatabaseWrapper.is_usable

    def counting(self: base.DatabaseWrapper) -> bool:
        calls.append(True)
        return bool(real(self))

    monkeypatch.setattr(base.DatabaseWrapper, "is_usable", counting)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_recently_used_connection_is_trusted_and_an_idle_one_is_pinged(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a persistent connection with health checks on, just used
    conn = _conn()
    monkeypatch.setattr(conn, "health_check_enabled", True)
    pings = _pings(monkeypatch)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    # when the next request starts at once
    conn.health_check_done = False
    with conn.cursor() as cur:
        cur.execute("SELECT 2")
    # then no ping was sent
    assert pings == []
    # when the connection then idles past the trust window
    monkeypatch.setattr(base, "HEALTH_CHECK_TRUST_SECONDS", 0.05)
    time.sleep(0.1)
    conn.health_check_done = False
    with conn.cursor() as cur:
        cur.execute("SELECT 3")
    # then the next request pings it first
    assert pings == [True]


@pytest.mark.django_db(transaction=True)
def test_an_idle_connection_killed_by_the_server_is_replaced_before_the_first_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a persistent connection that idled past the trust window, then was terminated
    conn = _conn()
    monkeypatch.setattr(conn, "health_check_enabled", True)
    monkeypatch.setattr(base, "HEALTH_CHECK_TRUST_SECONDS", 0.05)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        (old_pid,) = cur.fetchone()
    killer = base.DatabaseWrapper(conn.settings_dict, alias="killer")
    try:
        with killer.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    finally:
        killer.close()
    time.sleep(0.1)
    # when the next request queries
    conn.health_check_done = False
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        (new_pid,) = cur.fetchone()
    # then it ran on a fresh connection instead of failing
    assert new_pid != old_pid
