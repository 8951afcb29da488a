"""Registry: train → champion; a worse challenger is refused on the same holdout; rollback;
every step is an event in the log."""

from __future__ import annotations

from typing import Any

import pytest

from adplatform.eventlog import selectors as eventlog
from ranking import selectors, services
from ranking.models import ChampionPointer, ModelVersion
from ranking.nn import TrainedModel

from .conftest import Seeded

pytestmark = pytest.mark.django_db(transaction=True)


def _events(type_: str) -> list[dict]:
    return [e.data for e in eventlog.stream_events(stream="model:ctr") if e.type == type_]


def test_first_version_becomes_champion_with_holdout_metrics_and_artifact(seeded: Seeded) -> None:
    # when the click model is trained from the log
    result = services.model_train(kind="din_esmm")
    # then it is registered, promoted, and its artifact loads from Postgres alone
    assert result.skipped is False and result.promoted is True
    version = ModelVersion.objects.get(name=result.version)
    assert version.status == "champion"
    assert ChampionPointer.objects.get(slot="ctr").version_id == version.pk
    for key in ("auc", "gauc", "logloss", "calibration_error", "calibration_error_uncalibrated"):
        assert key in version.metrics
    assert version.n_train > version.n_test > 0
    assert version.test_from is not None and version.data_to is not None and version.test_from < version.data_to
    model = TrainedModel.loads(bytes(version.artifact))
    assert model.kind == "din_esmm" and model.spec.buckets == 1 << 12
    assert [e["version"] for e in _events("ModelTrained")] == [version.name]
    assert [e["version"] for e in _events("ModelPromoted")] == [version.name]


def test_promotion_refuses_a_worse_challenger_on_the_same_holdout(seeded: Seeded) -> None:
    # given a trained click model as champion
    champion = services.model_train(kind="din_esmm")
    assert champion.promoted
    # when a popularity model (worse) is trained on the same log as a challenger
    challenger = services.model_train(kind="popularity", force=True)
    # then the champion was re-evaluated on the challenger's holdout and kept
    assert challenger.promoted is False
    assert challenger.champion_metrics is not None
    assert challenger.champion_metrics["version"] == champion.version
    assert challenger.champion_metrics["n"] == challenger.metrics["n"]
    assert challenger.champion_metrics["auc"] > challenger.metrics["auc"]
    assert ModelVersion.objects.get(name=challenger.version).status == "rejected"
    assert ChampionPointer.objects.get(slot="ctr").version.name == champion.version
    refused = _events("ModelPromotionRefused")
    assert [e["version"] for e in refused] == [challenger.version]
    assert [e["version"] for e in _events("ModelPromoted")] == [champion.version]
    # and a manual promotion applies the same rule
    manual = services.model_promote(version=str(challenger.version), actor="test")
    assert manual.promoted is False
    assert ChampionPointer.objects.get(slot="ctr").version.name == champion.version


def test_retrain_is_skipped_without_new_ad_events(seeded: Seeded) -> None:
    first = services.model_train(kind="logreg")
    # when nothing new arrived
    second = services.model_train(kind="logreg")
    # then nothing is trained or written
    assert first.skipped is False
    assert second.skipped is True and second.reason == f"no new ad events since {first.version}"
    assert ModelVersion.objects.count() == 1


def test_rollback_reinstates_the_previous_champion(seeded: Seeded) -> None:
    # given popularity as the first champion, replaced by the better click model
    first = services.model_train(kind="popularity")
    second = services.model_train(kind="din_esmm")
    assert first.promoted and second.promoted
    # when the operator rolls back
    now = services.model_rollback(actor="test")
    # then the first is champion again, the second is withdrawn, and serving follows
    assert now == first.version
    assert ModelVersion.objects.get(name=second.version).status == "rolled_back"
    assert ModelVersion.objects.get(name=first.version).status == "champion"
    assert selectors.champion_scorer().version == first.version
    assert selectors.champion_name() == first.version  # what delivery's calibration reads
    assert _events("ModelRolledBack") == [{"version": second.version, "to": first.version, "actor": "test"}]
    # and there is nothing earlier to roll back to
    with pytest.raises(LookupError, match=services.ERROR_NO_ROLLBACK_TARGET):
        services.model_rollback(actor="test")


def test_prune_drops_artifacts_nobody_can_serve_and_keeps_champion_and_rollback_targets(
    seeded: Seeded, settings: Any
) -> None:
    # given: popularity champion, replaced by logreg (popularity retired: a rollback target),
    # then three refused popularity challengers
    settings.RANKING_KEEP_ROLLBACK_TARGETS = 1
    settings.RANKING_KEEP_CHALLENGERS = 1
    first = services.model_train(kind="popularity")
    champion = services.model_train(kind="logreg")
    refused = [services.model_train(kind="popularity", force=True) for _ in range(3)]
    assert first.promoted and champion.promoted and not any(r.promoted for r in refused)
    sizes = dict(ModelVersion.objects.values_list("name", "artifact_bytes"))
    # when the registry is pruned, twice
    pruned = services.model_artifacts_prune()
    again = services.model_artifacts_prune()
    # then only the two older refused versions lost their bytes; their rows and metrics stay
    assert sorted(pruned) == sorted([refused[0].version, refused[1].version]) and again == []
    rows = {v.name: v for v in ModelVersion.objects.all()}
    for name in pruned:
        assert bytes(rows[name].artifact) == b"" and rows[name].artifact_pruned_at is not None
        assert rows[name].metrics["auc"] > 0 and rows[name].artifact_bytes == sizes[name]
    for name in (first.version, champion.version, refused[2].version):
        assert rows[name].artifact_pruned_at is None and len(bytes(rows[name].artifact)) == sizes[name]
    assert _events("ModelArtifactsPruned") == [
        {"versions": pruned, "bytes": sum(sizes[n] for n in pruned)}
    ]
    # and serving, rollback and a manual promotion of a pruned version behave
    assert selectors.champion_scorer().version == champion.version
    with pytest.raises(LookupError, match=services.ERROR_ARTIFACT_PRUNED):
        services.model_promote(version=str(refused[0].version), actor="test")
    assert services.model_rollback(actor="test") == first.version


def test_prune_skips_rollback_targets_beyond_the_retention(seeded: Seeded, settings: Any) -> None:
    # given three successive champions (two earlier champions, retention of one)
    settings.RANKING_KEEP_ROLLBACK_TARGETS = 1
    settings.RANKING_PROMOTION_MIN_AUC_GAIN = -1.0  # every challenger wins: a chain of champions
    chain = [services.model_train(kind="popularity", force=True) for _ in range(3)]
    assert all(r.promoted for r in chain)
    # when pruned
    pruned = services.model_artifacts_prune()
    # then the oldest earlier champion went, and rollback goes to the kept one, then stops
    assert pruned == [chain[0].version]
    assert services.model_rollback(actor="test") == chain[1].version
    with pytest.raises(LookupError, match=services.ERROR_NO_ROLLBACK_TARGET):
        services.model_rollback(actor="test")
