"""`manage.py evaluate`: click models and retrieval on time splits of the log, the champion
re-scored on the same holdout; nothing is registered or published."""

from __future__ import annotations

import math
from io import StringIO

import pytest
from django.core.management import call_command

from profiles.models import EmbeddingVersion
from ranking import services
from ranking.models import ModelVersion

from .conftest import Seeded

pytestmark = pytest.mark.django_db(transaction=True)


def test_offline_evaluation_scores_every_model_on_one_holdout_and_registers_nothing(seeded: Seeded) -> None:
    # given a champion trained from the log
    champion = services.model_train(kind="logreg")
    # when the offline evaluation runs
    report = services.offline_evaluate(kinds=("popularity", "din_esmm"), device="cpu")
    # then both kinds and the champion are scored on the same holdout
    assert set(report.models) == {"popularity", "din_esmm"}
    assert report.n_train > report.n_test > 0
    assert report.champion is not None and report.champion["version"] == champion.version
    for metrics in (*report.models.values(), report.champion):
        assert 0.0 <= metrics["auc"] <= 1.0 and metrics["logloss"] > 0
    # the learned model beats popularity on this planted world
    assert report.models["din_esmm"]["auc"] > report.models["popularity"]["auc"]
    # and retrieval is evaluated beside its baselines on its own split
    assert report.retrieval is not None
    for model in ("two_tower", "covisitation", "popularity"):
        assert not math.isnan(report.retrieval[f"{model}.recall@50"])
    # and nothing new was registered or published
    assert ModelVersion.objects.count() == 1
    assert not EmbeddingVersion.objects.filter(kind__endswith="_learned").exists()


def test_evaluate_command_prints_the_table(seeded: Seeded) -> None:
    out = StringIO()
    call_command("evaluate", "--models", "popularity,logreg", stdout=out)
    text = out.getvalue()
    assert "impressions: train" in text
    assert text.count("\npopularity") == 1 and "\nlogreg" in text
    assert "retrieval two_tower.recall@50:" in text
