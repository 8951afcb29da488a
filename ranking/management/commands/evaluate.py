"""`manage.py evaluate`: offline evaluation on a time-based split of the log (click model
vs the LR and popularity baselines, and the current champion, on one holdout)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ranking import services

COLUMNS = ("auc", "gauc", "logloss", "calibration_error", "calibration_error_uncalibrated", "conversion_auc")


class Command(BaseCommand):
    help = "Offline evaluation of the click/conversion models on a time-based split of the event log."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--models", default="popularity,logreg,din_esmm", help="comma-separated: popularity,logreg,din_esmm"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            report = services.offline_evaluate(
                kinds=tuple(k for k in opts["models"].split(",") if k),
                device=opts["device"],
                seed=opts["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{report.n_examples} impressions: train {report.n_train}, validation {report.n_validation}, "
            f"test {report.n_test} (test {report.test_from} .. {report.test_to})"
        )
        self.stdout.write("model        " + "  ".join(f"{c:>12}" for c in COLUMNS))
        rows = dict(report.models)
        if report.champion is not None:
            rows[f"champion:{report.champion.get('version')}"] = report.champion
        for name, m in rows.items():
            self.stdout.write(f"{name:<12} " + "  ".join(f"{_fmt(m.get(c)):>12}" for c in COLUMNS))
        if report.retrieval is not None:  # filled by the retrieval hook in offline_evaluate
            for key, value in report.retrieval.items():
                self.stdout.write(f"retrieval {key}: {value}")


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
