"""Model registry: trained versions (artifact bytes in Postgres, loadable on any host) and
the champion pointer that serving follows. Rows are written only by ranking.services, in
the same transaction as the ModelTrained / ModelPromoted / ModelRolledBack events."""

from __future__ import annotations

from django.db import models


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate"  # trained, not (yet) compared
        CHAMPION = "champion"  # what serving uses
        REJECTED = "rejected"  # lost to the champion on the same holdout
        RETIRED = "retired"  # was champion, replaced by a better one (a rollback target)
        ROLLED_BACK = "rolled_back"  # was champion, withdrawn by a rollback

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=64, unique=True)  # e.g. "din_esmm-7": what serving reports
    kind = models.CharField(max_length=32)  # din_esmm | logreg | popularity
    mode = models.CharField(max_length=16, default="full")  # full | incremental
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    device = models.CharField(max_length=16, default="cpu")
    seed = models.IntegerField(default=0)
    data_from = models.DateTimeField(null=True)  # first training impression
    data_to = models.DateTimeField(null=True)  # last impression of the data read (test included)
    validation_from = models.DateTimeField(null=True)
    test_from = models.DateTimeField(null=True)  # the holdout: impressions in [test_from, data_to]
    log_position = models.BigIntegerField(default=0)  # newest log position read
    n_train = models.IntegerField(default=0)
    n_validation = models.IntegerField(default=0)
    n_test = models.IntegerField(default=0)
    feature_spec = models.JSONField(default=dict)
    train_config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)  # on the holdout: auc, gauc, logloss, calibration...
    comparison = models.JSONField(default=dict)  # champion re-evaluated on this holdout
    artifact = models.BinaryField()
    artifact_sha256 = models.CharField(max_length=64)
    artifact_bytes = models.IntegerField(default=0)  # size as trained (kept after pruning)
    artifact_pruned_at = models.DateTimeField(null=True)  # bytes dropped by model_artifacts_prune
    train_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField()
    promoted_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class ChampionPointer(models.Model):
    """One row per model slot ("ctr"): serving reads `version_id` (cheap, indexed)."""

    slot = models.CharField(max_length=32, primary_key=True)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.slot} → {self.version_id}"
