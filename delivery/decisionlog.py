"""The decision log: one AdDecisionMade event per /rank decision (training data for the
next model: what was considered, with which features and scores, what won at which
price). Built here, appended by services.rank_decide in one insert."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from adplatform.eventlog.services import NewEvent
from ranking.events import AD_DECISION_MADE, decision_stream


def decision_event(
    *,
    request_id: str,
    user_id: str,
    session_id: str | None,
    at: datetime,
    placement: str,
    page_type: str,
    context: Mapping[str, Any],
    model_version: str,
    limit: int,
    policy: str,
    mode: str,
    candidates: Sequence[Mapping[str, Any]],
    eligibility: Mapping[str, int],
    winners: Sequence[Mapping[str, Any]],
    segment: str | None,
    consent: bool,
    value_weight: float = 0.0,
) -> NewEvent:
    meta: dict[str, Any] = {"source": "rank"}
    if session_id:
        meta["session_id"] = session_id
    return NewEvent(
        type=AD_DECISION_MADE.name,
        stream=decision_stream(request_id),
        data={
            "request_id": request_id,
            "placement": placement,
            "page_type": page_type,
            "context": dict(context),
            "model_version": model_version,
            "limit": limit,
            "policy": policy,
            "mode": mode,
            "candidates": list(candidates),
            "eligibility": dict(eligibility),
            "winners": list(winners),
            "segment": segment,
            "consent": consent,
            "value_weight": value_weight,
        },
        occurred_at=at,
        event_id=uuid.UUID(hex=request_id) if len(request_id) == 32 else uuid.uuid4(),
        stream_version=1,
        user_key=user_id,
        meta=meta,
    )
