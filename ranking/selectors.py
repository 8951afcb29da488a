"""Reads for serving: the champion scorer (click/conversion probabilities) and registry state.

CONTRACT (docs/contracts.md): the dataclasses and `champion_scorer()` are fixed; trained
models (ModelScorer) serve behind the same surface. torch is imported only when a
champion is loaded, so importing this module stays light."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)


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
    # the feature function's output (ranking/features.py), logged in AdDecisionMade: the
    # candidates' own features as columns (one list or float32 array per name) and the
    # shared ones once
    feature_columns: dict[str, Any] = field(default_factory=dict)
    shared_features: dict[str, Any] = field(default_factory=dict)


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
        )


class ModelScorer:
    """A registered model version serving in this process: the shared feature function,
    then one batched CPU forward pass over all candidates."""

    def __init__(self, version: str, model: Any) -> None:
        self.version = version
        self.model = model  # ranking.nn.TrainedModel
        self._predict = model.serving_predictor()

    def score(self, request: ScoringRequest) -> ScoredBatch:
        from .features import encode_parts, request_feature_parts

        n = len(request.candidates)
        if n == 0:
            return ScoredBatch(p_click=np.zeros(0), p_conversion=np.zeros(0))
        parts = request_feature_parts(request, products=_recent_product_facts(request))
        enc = encode_parts(parts, self.model.spec)
        p_click, p_conv = self._predict(enc)
        # the candidates' dense features are logged as the float32 the model read: exact
        # for training, and about half the digits of float64 in the decision's JSON
        columns: dict[str, Any] = dict(parts.columns)
        dense = np.ascontiguousarray(enc.dense.T)
        for j, name in enumerate(self.model.spec.dense):
            if name in columns:
                columns[name] = dense[j]
        return ScoredBatch(p_click=p_click, p_conversion=p_conv, feature_columns=columns, shared_features=parts.shared)


def _recent_product_facts(request: ScoringRequest) -> dict[str, Any]:
    """Facts of the shopper's recent products, for the behaviour sequence."""
    from catalog import selectors as catalog

    profile = request.profile
    return catalog.product_facts_cached(getattr(profile, "recent_products", ()) or ()) if profile is not None else {}


_lock = threading.Lock()
_champion: dict[str, Any] = {"scorer": None, "version_id": None, "checked_at": -1e18}


def _serving_threads() -> None:
    """Scoring ~50 candidates is latency-bound: one intra-op thread per web worker thread
    avoids thread-pool hand-offs (≈10× faster under load than the default pool). Training
    sets its own thread count when it starts."""
    import torch
    from django.conf import settings

    torch.set_num_threads(int(settings.RANKING_SCORER_THREADS))


def champion_version_id() -> int | None:
    """The champion pointer (one indexed row)."""
    from .models import ChampionPointer

    return ChampionPointer.objects.filter(slot="ctr").values_list("version_id", flat=True).first()


def champion_name() -> str:
    """The serving model's version name: the champion's, or PriorScorer's before any
    promotion (one indexed join; the scorer itself is not loaded)."""
    from .models import ChampionPointer

    name = ChampionPointer.objects.filter(slot="ctr").values_list("version__name", flat=True).first()
    return name or PriorScorer.version


def champion_scorer() -> Scorer:
    """The current champion, loaded once per process and swapped when the champion pointer
    moves (no restart). Falls back to PriorScorer when nothing has been promoted.

    The pointer is read at most every RANKING_CHAMPION_CHECK_SECONDS; a new champion's
    artifact is loaded from Postgres once, then every call reuses it."""
    from django.conf import settings

    now = time.monotonic()
    scorer = _champion["scorer"]
    if scorer is not None and now - _champion["checked_at"] < float(settings.RANKING_CHAMPION_CHECK_SECONDS):
        return scorer  # type: ignore[no-any-return]
    with _lock:
        if _champion["scorer"] is not None and now - _champion["checked_at"] < float(
            settings.RANKING_CHAMPION_CHECK_SECONDS
        ):
            return _champion["scorer"]  # type: ignore[no-any-return]
        version_id = champion_version_id()
        if version_id is None:
            new: Scorer = PriorScorer()
        elif version_id == _champion["version_id"] and _champion["scorer"] is not None:
            new = _champion["scorer"]
        else:
            from .models import ModelVersion
            from .nn import TrainedModel

            row = ModelVersion.objects.only("name", "artifact").get(pk=version_id)
            new = ModelScorer(row.name, TrainedModel.loads(bytes(row.artifact)))
            _serving_threads()
        _champion.update(scorer=new, version_id=version_id, checked_at=time.monotonic())
        return new


def clear_champion_cache() -> None:
    with _lock:
        _champion.update(scorer=None, version_id=None, checked_at=-1e18)


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    kind: str
    status: str
    created_at: Any
    metrics: dict[str, Any]


def model_versions(*, limit: int = 50) -> list[ModelVersionInfo]:
    from .models import ModelVersion

    rows = ModelVersion.objects.defer("artifact").order_by("-id")[:limit]
    return [ModelVersionInfo(r.name, r.kind, r.status, r.created_at, dict(r.metrics)) for r in rows]
