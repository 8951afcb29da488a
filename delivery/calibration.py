"""Live click calibration (ADR 0062): how far each creative's tracked clicks are from
the clicks the click model expected for its impressions, as a multiplier on the model's
p_click in the auto policy.

The model is trained on yesterday's log; between trainings a creative's click rate can
drift from what the model learned (a new creative, a tired one, a shop-wide change), and
winning an auction selects the candidates whose p_click is overestimated. The tracking
tokens carry the raw p_click each served ad had and the model that gave it, so the
`delivery_stats` projection keeps per creative × model: impressions, clicks and the sum
of p_click (the expected clicks). The multiplier is a ratio of smoothed counts:

    overall    R   = (Σ clicks + A) / (Σ expected + A)                 (shrunk towards 1)
    creative   m_c = (clicks_c + A·R) / (expected_c + A)               (shrunk towards R)

with A = DELIVERY_CALIBRATION_PRIOR expected clicks: a creative's own ratio weighs half
once the model expected A clicks of it. Counts are per model version, so a retrained
model starts from its own evidence, not its predecessor's errors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

MIN_MULTIPLIER, MAX_MULTIPLIER = 0.1, 10.0


@dataclass(frozen=True)
class Calibration:
    """The multipliers of one click model version."""

    overall: float = 1.0
    by_creative: dict[int, float] = field(default_factory=dict)

    def of(self, creative_id: int) -> float:
        return self.by_creative.get(creative_id, self.overall)


UNCALIBRATED = Calibration()


def _clamp(x: float) -> float:
    return min(MAX_MULTIPLIER, max(MIN_MULTIPLIER, x))


def calibrations(rows: Iterable[tuple[int, str, int, float]], *, prior: float) -> dict[str, Calibration]:
    """{model version: Calibration} from (creative_id, model_version, clicks, expected
    clicks) rows; `prior` is A above (expected clicks)."""
    by_version: dict[str, list[tuple[int, int, float]]] = {}
    for creative_id, version, clicks, expected in rows:
        by_version.setdefault(version, []).append((creative_id, clicks, expected))
    out: dict[str, Calibration] = {}
    for version, got in by_version.items():
        overall = _clamp((sum(c for _, c, _ in got) + prior) / (sum(e for _, _, e in got) + prior))
        out[version] = Calibration(
            overall=overall,
            by_creative={cid: _clamp((c + prior * overall) / (e + prior)) for cid, c, e in got},
        )
    return out
