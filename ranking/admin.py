"""Admin for operators: model versions (read-only; metrics, data window, feature spec) with
promote / roll back actions that go through ranking.services, and the champion pointer."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from adplatform.admin import ReadOnlyAdmin

from . import services
from .models import ChampionPointer, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "mode", "status", "test_auc", "test_gauc", "test_logloss", "created_at")
    list_filter = ("status", "kind", "mode")
    exclude = ("artifact",)
    readonly_fields = (
        "name",
        "kind",
        "mode",
        "status",
        "device",
        "seed",
        "data_from",
        "data_to",
        "validation_from",
        "test_from",
        "log_position",
        "n_train",
        "n_validation",
        "n_test",
        "feature_spec",
        "train_config",
        "metrics",
        "comparison",
        "artifact_sha256",
        "artifact_bytes",
        "train_seconds",
        "created_at",
        "promoted_at",
    )
    actions = ["promote", "rollback"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        return super().get_queryset(request).defer("artifact")

    @admin.display(description="test AUC")
    def test_auc(self, obj: ModelVersion) -> Any:
        return obj.metrics.get("auc")

    @admin.display(description="test GAUC")
    def test_gauc(self, obj: ModelVersion) -> Any:
        return obj.metrics.get("gauc")

    @admin.display(description="test logloss")
    def test_logloss(self, obj: ModelVersion) -> Any:
        return obj.metrics.get("logloss")

    @admin.action(description="Promote (only if it beats the champion on its holdout)")
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for name in queryset.values_list("name", flat=True):
            result = services.model_promote(version=name, actor=f"admin:{request.user}")
            level = messages.SUCCESS if result.promoted else messages.WARNING
            self.message_user(
                request, f"{name}: {'promoted' if result.promoted else 'not promoted'} ({result.reason})", level
            )

    @admin.action(description="Roll the champion back to the previous one")
    def rollback(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        try:
            name = services.model_rollback(actor=f"admin:{request.user}")
        except LookupError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"champion is now {name}", messages.SUCCESS)


@admin.register(ChampionPointer)
class ChampionPointerAdmin(ReadOnlyAdmin):
    list_display = ("slot", "version", "changed_at")
