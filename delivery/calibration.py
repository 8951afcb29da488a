"""Live click calibration (ADR 0062): how far each creative's tracked clicks are from
the clicks the click model expected for its impressions, as a multiplier on the model's
p_click in the auto policy.

The model is trained on yesterday's log; between trainings a creative's click rate can
drift from what the model learned (a new creative, a tired one, a shop-wide change), and
winning an auction selects the candidates whose p_click is overestimated. The tracking
tokens carry the raw p_click each served ad had and the model that gave it, so the
`delivery_stats` projection keeps per creative × model × slot position: impressions,
clicks and the sum of p_click (the expected clicks). With A = DELIVERY_CALIBRATION_PRIOR
expected clicks:

    position   R_k  = (clicks at k + A) / (expected at k + A)     all creatives; shrunk to 1
    creative   r_c  = (clicks_c + A) / (Σ_k expected_c,k · R_k + A)      shrunk to 1
    multiplier m_c  = R_1 · r_c

R_k is how the model's p_click (scored for the top slot) meets reality at slot k; r_c is
how the creative does against an average creative shown in the same slots, so a creative
that mostly ran in slot 2 is not marked down for the slot; m_c calibrates p_click for the
top slot, the position the auction ranks for. A creative's own evidence weighs half once
the model expected A clicks of it. Counts are per model version: a retrained model starts
from its own evidence, not its predecessor's errors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

MIN_MULTIPLIER, MAX_MULTIPLIER = 0.1, 10.0


@dataclass(frozen=True)
class Calibration:
    """The multipliers of one click model version."""

    overall: float = 1.0  # R_1: a creative without evidence of its own
    by_creative: dict[int, float] = field(default_factory=dict)

    def of(self, creative_id: int) -> float:
        return self.by_creative.get(creative_id, self.overall)


UNCALIBRATED = Calibration()


def _clamp(x: float) -> float:
    return min(MAX_MULTIPLIER, max(MIN_MULTIPLIER, x))


def calibrations(rows: Iterable[tuple[int, str, int, int, float]], *, prior: float) -> dict[str, Calibration]:
    """{model version: Calibration} from (creative_id, model_version, position, clicks,
    expected clicks) rows; `prior` is A above (expected clicks)."""
    by_version: dict[str, list[tuple[int, int, int, float]]] = {}
    for creative_id, version, position, clicks, expected in rows:
        by_version.setdefault(version, []).append((creative_id, position, clicks, expected))
    out: dict[str, Calibration] = {}
    for version, got in by_version.items():
        at_position: dict[int, list[float]] = {}
        for _, position, clicks, expected in got:
            acc = at_position.setdefault(position, [0.0, 0.0])
            acc[0] += clicks
            acc[1] += expected
        ratio = {k: _clamp((c + prior) / (e + prior)) for k, (c, e) in at_position.items()}
        top = ratio.get(1, 1.0)
        per_creative: dict[int, list[float]] = {}
        for cid, position, clicks, expected in got:
            acc = per_creative.setdefault(cid, [0.0, 0.0])
            acc[0] += clicks
            acc[1] += expected * ratio[position]
        out[version] = Calibration(
            overall=top,
            by_creative={cid: _clamp(top * (c + prior) / (e + prior)) for cid, (c, e) in per_creative.items()},
        )
    return out
