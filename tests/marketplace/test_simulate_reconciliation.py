"""`simulate` end to end over a live server: a tiny seeded world, two policies side by side,
everything through HTTP, and the simulator's totals equal what GET /reports shows once
the projections have settled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from marketplace.services import world_seed
from marketplace.simulation import (
    SimulationConfig,
    manifest_world,
    simulation_report,
)
from tests.campaigns.conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)


def test_simulation_report_reconciles_with_the_reports_api(
    live_server: Any, make_key: Any, settings: Any, tmp_path: Path
) -> None:
    # given a tiny seeded world whose history the projections have applied
    settings.VAR_DIR = tmp_path
    seeded = world_seed(size="test", seed=22, days=1)
    manifest = json.loads(Path(seeded.manifest_path).read_text())

    def projections() -> None:
        for name in ("attribution", "reports"):
            settle(name)

    projections()
    cfg = SimulationConfig(
        base_url=live_server.url,
        api_key=make_key("events:write", "ads:rank"),
        policies=("random", "auto"),
        users=20,
        sessions=8,
        concurrency=2,
        seed=5,
        attribution_window_seconds=settings.ATTRIBUTION_WINDOW_SECONDS,
    )

    # when `simulate --reconcile` builds its report (the test drives the projections)
    report = simulation_report(
        world=manifest_world(manifest),
        manifest=manifest,
        cfg=cfg,
        reconcile=True,
        reconcile_timeout=30,
        draws=200,
        before_poll=projections,
    )

    # then every session ran over HTTP without a refused event, both policies are reported, and
    # each advertiser's GET /reports grew by exactly what the simulator counted for it
    # (counts and revenue equal, spend up to the API's 4-decimal rounding)
    assert set(report["policies"]) == {"random", "auto"}
    assert "vs_random" in report["policies"]["auto"]
    assert report["sessions"] == 16 and report["http_errors"] == 0
    assert report["events"]["rejected"] == 0 and report["events"]["accepted"] == report["events"]["sent"] > 0
    mismatched = {a: v for a, v in report["reconciliation_by_advertiser"].items() if v["simulated"] != v["reported"]}
    assert report["reconciled"] is True, json.dumps(mismatched)
    rec = report["reconciliation"]
    assert int(rec["impressions"]["simulated"]) == int(rec["impressions"]["reported"]) > 0
    assert rec["clicks"]["simulated"] == rec["clicks"]["reported"]
    assert rec["conversions"]["simulated"] == rec["conversions"]["reported"]
