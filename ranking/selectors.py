"""Reads for serving: the champion scorer (click/conversion probabilities) and registry state.

CONTRACT (docs/contracts.md): the dataclasses and `champion_scorer()` are fixed; the
learning issue replaces the prior scorer with trained models behind the same surface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class CandidateItem:
    creative_id: int
    campaign_id: int
    advertiser_id: int
    product_id: str | None = None
    category_path: tuple[str, ...] = ()
    brand: str | None = None
    price: float | None = None
    text: str = ""  # headline + body, for content features


@dataclass(frozen=True)
class ScoringRequest:
    user_id: str
    profile: Any | None  # profiles.selectors.ProfileSnapshot (None: unknown shopper or no consent)
    context: dict[str, Any]  # page_type, category_id, product_id, query, device, geo, hour (UTC), placement
    candidates: Sequence[CandidateItem]


@dataclass(frozen=True)
class ScoredBatch:
    p_click: np.ndarray  # shape (n,), calibrated probabilities
    p_conversion: np.ndarray  # shape (n,), P(conversion | impression)
    features: list[dict[str, Any]] = field(default_factory=list)  # per candidate, logged in AdDecisionMade


class Scorer(Protocol):
    version: str

    def score(self, request: ScoringRequest) -> ScoredBatch: ...


class PriorScorer:
    """Used when no model has been promoted: the same prior for every candidate."""

    version = "prior-0"

    def __init__(self, p_click: float = 0.02, p_conversion: float = 0.002) -> None:
        self.p_click = p_click
        self.p_conversion = p_conversion

    def score(self, request: ScoringRequest) -> ScoredBatch:
        n = len(request.candidates)
        return ScoredBatch(
            p_click=np.full(n, self.p_click),
            p_conversion=np.full(n, self.p_conversion),
            features=[{} for _ in range(n)],
        )


def champion_scorer() -> Scorer:
    """The current champion, loaded once per process and swapped when the champion pointer
    moves (no restart). Falls back to PriorScorer when nothing has been promoted."""
    return PriorScorer()
