"""append_events: idempotency on every path, optimistic concurrency per stream."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from adplatform.eventlog import selectors
from adplatform.eventlog.services import AppendResult, NewEvent, StreamVersionConflictError, append_events

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _ev(**kw: Any) -> NewEvent:
    return NewEvent(
        type=kw.pop("type", "PageViewed"),
        stream=kw.pop("stream", "user:a"),
        data={"url": "u"},
        occurred_at=NOW,
        user_key="a",
        **kw,
    )


def _raw() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    for k in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(k, None)
    return psycopg.connect(**params)


def test_repeated_ids_in_one_call_and_across_calls_are_stored_once() -> None:
    a, b = _ev(), _ev()
    with transaction.atomic():
        first = append_events([a, b, a])
    with transaction.atomic():
        second = append_events([b, _ev(event_id=a.event_id)])
    assert first.stored == {a.event_id, b.event_id}
    assert second == AppendResult(frozenset())
    assert selectors.count_events() == 2


def test_an_id_committed_concurrently_during_the_copy_is_skipped_not_failed() -> None:
    # given another transaction has inserted id X but not committed yet
    x = uuid.uuid4()
    other = _raw()
    other.execute(
        "INSERT INTO eventlog_event (event_id, stream, type, schema_version, occurred_at, user_key, data, meta) "
        "VALUES (%s, 'user:z', 'PageViewed', 1, now(), 'z', '{}', '{}')",
        [x],
    )
    mine = [_ev(), _ev(event_id=x), _ev()]
    result: dict[str, Any] = {}

    def append() -> None:
        try:
            with transaction.atomic():
                result["r"] = append_events(mine)
        finally:
            connection.close()

    # when we append X plus two new ids (our COPY waits on X's index entry)
    t = threading.Thread(target=append)
    t.start()
    t.join(1.0)
    assert t.is_alive()
    other.commit()
    other.close()
    t.join(30)
    # then the two new ids are stored and X is reported as a duplicate
    assert result["r"].stored == {mine[0].event_id, mine[2].event_id}
    assert selectors.count_events() == 3


def test_stream_version_conflict_raises_and_stores_nothing_of_the_batch() -> None:
    with transaction.atomic():
        append_events([_ev(stream="campaign:1", stream_version=1)])
    loser = [_ev(stream="campaign:1", stream_version=2), _ev(stream="campaign:1", stream_version=1)]
    with pytest.raises(StreamVersionConflictError):
        with transaction.atomic():
            append_events(loser)
    assert selectors.count_events() == 1


def test_unknown_event_types_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown event type 'Nope'"):
        with transaction.atomic():
            append_events([_ev(type="Nope")])


def test_a_commit_notifies_the_consumer_with_the_appended_types() -> None:
    listener = _raw()
    listener.autocommit = True
    try:
        listener.execute("LISTEN eventlog")
        with transaction.atomic():
            append_events([_ev(type="PageViewed"), _ev(type="ProductViewed", stream="user:b")])
        with transaction.atomic():
            append_events([_ev(type="ProductViewed")], new_ids=True)
        # a type no projection reads (/rank's decisions) wakes nobody; a batch mixing it
        # with a read type names both
        with transaction.atomic():
            append_events([_ev(type="AdDecisionMade", stream="decision:x")], new_ids=True)
        with transaction.atomic():
            append_events([_ev(type="AdDecisionMade", stream="decision:y"), _ev(type="PageViewed", stream="user:c")])
        payloads = [n.payload for n in listener.notifies(timeout=2.0, stop_after=3)]
    finally:
        listener.close()
    assert payloads == ["PageViewed,ProductViewed", "ProductViewed", "AdDecisionMade,PageViewed"]


def test_the_consumer_wakes_only_the_projections_reading_a_named_type() -> None:
    from adplatform.eventlog.consumer import woken
    from adplatform.eventlog.projections import Projection

    class Everything(Projection):
        name = "everything"

        def apply(self, events: list[Any]) -> None: ...

        def reset(self) -> None: ...

    class Views(Everything):
        name = "views"
        event_types = frozenset({"ProductViewed"})

    registry: dict[str, Projection] = {"views": Views(), "everything": Everything()}
    assert woken(registry, "AdDecisionMade") == {"everything"}
    assert woken(registry, "AdDecisionMade,ProductViewed") == {"views", "everything"}
    assert woken(registry, "") == {"views", "everything"}  # an unnamed notification wakes all
