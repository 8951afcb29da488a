"""Ad delivery event types, appended by ranking (decisions) and tracking (impressions,
clicks, conversions). The reports projection (campaigns) and training data (ranking.ml)
read them. Field contracts (all in `data`):

AdDecisionMade      stream "decision:<request_id>"; user_key set (personal)
    request_id, placement, page_type, context{...}, model_version, limit,
    features_shared{...} (the features every candidate shares, logged once),
    candidates: columns (v3), one list per field with an entry per candidate:
        {creative_id: [...], campaign_id: [...], advertiser_id: [...], eligible: [...],
         reason: [...], scores: {p_click: [...], p_conversion, ecpm, value, calibration?},
         features: {name: [...], ...}} (null where a candidate has no such value);
        `decision_candidates(data)` reads them back as one dict per candidate
        {creative_id, campaign_id, advertiser_id, features{...}, scores{...}, eligible,
        reason?}; a candidate's feature row is {**features_shared, **features}.
        scores.p_click is what the auction used: the model's times the live calibration
        multiplier in scores.calibration (ADR 0062; absent before it, 1.0 off auto).
        v4 (ADR 0063): a numeric column may be packed, {"f4": base64 of little-endian
        float32, NaN where null}; `column_values(col)` reads either form as a list,
        `column_cells`/`cell` single entries (the training reader).
    (v1 logged whole feature rows per candidate, v2 the same rows minus the shared part,
    both as a list of candidate dicts: the upcasters lift them to v3),
    winners: [{creative_id, campaign_id, advertiser_id, product_id?, position, variant?,
               pricing_model "cpc|cpm|cpa", price (decimal str), scores{...}}],
    segment (str|None), consent (bool)
AdImpressed / AdClicked   stream "decision:<request_id>"; user_key set
    request_id, creative_id, campaign_id, advertiser_id, placement, position,
    pricing_model, charge (decimal str, "0" when not billable on this event),
    currency, segment (str|None); tracked ones served since ADR 0062 also carry
    p_click (the click model's raw p_click for the ad) and model_version
ConversionAttributed      stream "decision:<request_id>"; user_key set
    request_id, creative_id, campaign_id, advertiser_id, placement, order_id,
    revenue (decimal str), charge (decimal str; CPA bid, else "0"), currency,
    segment (str|None), click_event_id
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adplatform.eventlog.events import EventType, register

_CANDIDATE_FIELDS = ("creative_id", "campaign_id", "advertiser_id", "eligible", "reason")
_NESTED = ("scores", "features")
PACKED_F4 = "f4"


def pack_f4(values: Any) -> dict[str, str]:
    """A float column as float32 bytes in base64 (None → NaN): Postgres stores it as one
    string instead of parsing every number into a jsonb numeric (ADR 0063)."""
    arr = np.asarray([np.nan if v is None else v for v in values] if isinstance(values, list) else values, dtype="<f4")
    return {PACKED_F4: base64.b64encode(arr.tobytes()).decode("ascii")}


def column_cells(col: Any) -> Any:
    """A logged candidate column for reading single cells with `cell`: a plain column as
    logged, a packed one as its float32 array (decoding is one base64 pass; the training
    reader reads a few cells of each decision, not whole columns)."""
    return np.frombuffer(base64.b64decode(col[PACKED_F4]), dtype="<f4") if isinstance(col, dict) else col


def cell(cells: Any, j: int) -> Any:
    """Entry j of `column_cells(...)`: a packed float as the float32's exact value (the
    model reads float32: the same input as v3's decimal), NaN as None."""
    v = cells[j]
    if isinstance(v, np.floating):
        return None if v != v else float(v)
    return v


def column_values(col: Any) -> list[Any]:
    """A logged candidate column as a list. A packed float column reads as the shortest
    decimal of each float32 (what v3 logged as JSON: both versions read the same numbers),
    NaN as None."""
    cells = column_cells(col)
    if isinstance(cells, np.ndarray):
        return [None if s == "nan" else float(s) for s in cells.astype(str).tolist()]
    return list(cells)


def candidate_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A decision's candidates (one dict each) as columns: the logged document is about
    half the size of the rows' (key names once, not once per candidate), and Postgres
    parses and compresses it in about half the time (docs/benchmarks/rank.md)."""
    n = len(rows)
    out: dict[str, Any] = {name: [row.get(name) for row in rows] for name in _CANDIDATE_FIELDS}
    for part in _NESTED:
        cols: dict[str, list[Any]] = {}
        for i, row in enumerate(rows):
            for name, value in (row.get(part) or {}).items():
                col = cols.get(name)
                if col is None:
                    col = cols[name] = [None] * n
                col[i] = value
        out[part] = cols
    return out


def decision_candidates(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A (v3/v4) decision's candidates, one dict per candidate, in the order considered."""
    cols = data.get("candidates") or {}
    flat = {name: column_values(cols[name]) for name in _CANDIDATE_FIELDS if name in cols}
    nested = {part: {k: column_values(c) for k, c in (cols.get(part) or {}).items()} for part in _NESTED}
    rows: list[dict[str, Any]] = []
    for i in range(len(cols.get("creative_id") or ())):
        row = {name: col[i] for name, col in flat.items() if col[i] is not None}
        for part, part_cols in nested.items():
            values = {name: col[i] for name, col in part_cols.items() if col[i] is not None}
            if values:
                row[part] = values
        rows.append(row)
    return rows


# On erasure these lose their user_key (the shopper link); decisions also lose the
# request context (search query, product viewed) and candidate features.
AD_DECISION_MADE = register(
    EventType(
        "AdDecisionMade",
        version=4,
        upcasters={
            1: lambda data: {**data, "features_shared": {}},
            2: lambda data: {**data, "candidates": candidate_columns(data.get("candidates") or [])},
            3: lambda data: data,  # v3's plain lists are valid v4 columns
        },
        personal=True,
        erasure_keeps=frozenset(
            {"request_id", "placement", "page_type", "model_version", "limit", "winners", "value_weight", "click_value"}
        ),
    )
)
AD_IMPRESSED = register(EventType("AdImpressed", version=1))
AD_CLICKED = register(EventType("AdClicked", version=1))
# The order id is the shop's handle on a person: it goes on erasure, the business facts stay.
CONVERSION_ATTRIBUTED = register(
    EventType(
        "ConversionAttributed",
        version=1,
        personal=True,
        erasure_keeps=frozenset(
            {
                "request_id",
                "creative_id",
                "campaign_id",
                "advertiser_id",
                "placement",
                "revenue",
                "charge",
                "currency",
                "segment",
                "click_event_id",
                "pricing_model",
            }
        ),
    )
)

AD_DELIVERY_EVENT_TYPES = frozenset(
    {AD_DECISION_MADE.name, AD_IMPRESSED.name, AD_CLICKED.name, CONVERSION_ATTRIBUTED.name}
)


def decision_stream(request_id: str) -> str:
    return f"decision:{request_id}"


# --- model registry (learning pipeline): stream "model:<slot>" -------------------------
# ModelTrained         version, kind, mode, data_from, data_to, test_from, log_position,
#                      n_train/n_validation/n_test, metrics{...}, artifact_sha256, device
# ModelPromoted        version, previous (str|None), reason, metrics{...}, champion_metrics{...}|None
# ModelPromotionRefused version, champion, reason, metrics{...}, champion_metrics{...}
# ModelRolledBack      version (withdrawn), to (the champion again), actor
# ModelArtifactsPruned versions [names whose artifact bytes were dropped], bytes (freed)
MODEL_TRAINED = register(EventType("ModelTrained", version=1))
MODEL_PROMOTED = register(EventType("ModelPromoted", version=1))
MODEL_PROMOTION_REFUSED = register(EventType("ModelPromotionRefused", version=1))
MODEL_ROLLED_BACK = register(EventType("ModelRolledBack", version=1))
MODEL_ARTIFACTS_PRUNED = register(EventType("ModelArtifactsPruned", version=1))


def model_stream(slot: str) -> str:
    return f"model:{slot}"
