"""`manage.py train`: train a model version from the event log (the service the Celery
tasks call), register it and promote it if it beats the champion on the same holdout."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ranking import services


class Command(BaseCommand):
    help = (
        "Train a click/conversion model from the event log and register it (promoted only if better). "
        "Progress and ETA go to the log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            default="din_esmm",
            choices=["din_esmm", "logreg", "popularity", "two_tower"],
            help="two_tower: the retrieval model (learned shopper/product/creative vectors in pgvector)",
        )
        parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="default: ML_DEVICE")
        parser.add_argument("--mode", default="full", choices=["full", "incremental"])
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--no-promote", action="store_true", help="register only")
        parser.add_argument("--force", action="store_true", help="train even without new ad events")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["model"] == "two_tower":
            self._two_tower(opts)
            return
        try:
            result = services.model_train(
                kind=opts["model"],
                mode=opts["mode"],
                device=opts["device"],
                seed=opts["seed"],
                promote=not opts["no_promote"],
                force=opts["force"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if result.skipped:
            self.stdout.write(f"skipped: {result.reason}")
            return
        m = result.metrics
        self.stdout.write(
            f"{result.version}: AUC {m.get('auc')} GAUC {m.get('gauc')} logloss {m.get('logloss')} "
            f"calibration error {m.get('calibration_error')} "
            f"(uncalibrated {m.get('calibration_error_uncalibrated')})"
        )
        if result.champion_metrics is not None:
            self.stdout.write(
                f"champion {result.champion_metrics.get('version')} on the same holdout: "
                f"AUC {result.champion_metrics.get('auc')}"
            )
        self.stdout.write(("promoted: " if result.promoted else "not promoted: ") + result.reason)

    def _two_tower(self, opts: dict[str, Any]) -> None:
        from ranking.retrieval import services as retrieval

        try:
            outcome = retrieval.retrieval_train_promote(device=opts["device"] or "auto", seed=opts["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        m = outcome.result.metrics
        self.stdout.write(
            f"{outcome.result.version}: recall@50 two-tower {m.get('two_tower.recall@50')} "
            f"co-visitation {m.get('covisitation.recall@50')} popularity {m.get('popularity.recall@50')}"
        )
        self.stdout.write(("promoted: " if outcome.promoted else "not promoted: ") + outcome.reason)
