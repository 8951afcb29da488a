"""Writes for shopper behaviour: validated, idempotent ingestion into the event log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adplatform.eventlog.services import NewEvent, append_events

from .events import validate_behaviour_event


@dataclass(frozen=True)
class Rejection:
    index: int
    event_id: str | None
    errors: dict[str, list[str]]


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[Rejection] = field(default_factory=list)


def events_ingest(*, raw_events: Sequence[Any], source: str = "api", now: datetime | None = None) -> IngestResult:
    """Validate each event; append the valid ones in one transaction (durable on return).

    Invalid events are reported by index and never stored; an `event_id` already in the
    log (earlier batch, same batch, or a concurrent request) counts as a duplicate.
    """
    now = now or timezone.now()
    max_future = timedelta(seconds=settings.EVENT_MAX_FUTURE_SECONDS)
    valid: list[NewEvent] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raw_events):
        outcome = validate_behaviour_event(raw, now=now, source=source, max_future=max_future)
        if outcome.event is None:
            rejected.append(Rejection(index=index, event_id=outcome.event_id, errors=outcome.errors))
        else:
            valid.append(outcome.event)
    if not valid:
        return IngestResult(accepted=0, duplicates=0, rejected=rejected)
    with transaction.atomic():
        result = append_events(valid)
    return IngestResult(accepted=result.count, duplicates=len(valid) - result.count, rejected=rejected)
