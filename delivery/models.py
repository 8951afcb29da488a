"""Read models of delivery: the pacing controller's state (written by the pacing service,
atomically per tick) and per-creative/variant serving statistics (the `delivery_stats`
projection of impressions and clicks, read by exploration and the variant bandit)."""

from __future__ import annotations

from django.db import models


class PacingState(models.Model):
    """Throttle (delivery probability) of one even-paced campaign on its local day."""

    campaign_id = models.BigIntegerField(primary_key=True)
    day = models.DateField()  # campaign-local day the state belongs to
    throttle = models.FloatField(default=1.0)
    spent_at_tick = models.DecimalField(max_digits=18, decimal_places=6, default=0)  # spend today at tick_at
    tick_at = models.DateTimeField()
    # the controller's estimate of the full-throttle spend rate (pacing.Controller)
    spend_avg = models.FloatField(default=0.0)
    exposure_avg = models.FloatField(default=0.0)

    class Meta:
        db_table = "delivery_pacing_state"


class CreativeStats(models.Model):
    """Impressions and clicks of a creative, split by variant (-1: the base creative or
    unknown) and shopper segment ("" = none)."""

    creative_id = models.BigIntegerField()
    variant = models.IntegerField()
    segment = models.CharField(max_length=128)
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)

    class Meta:
        db_table = "delivery_creative_stats"
        constraints = [
            models.UniqueConstraint(fields=["creative_id", "variant", "segment"], name="delivery_stats_uniq")
        ]


class CreativeCalibration(models.Model):
    """Live click calibration of one creative under one click model at one slot position:
    its tracked impressions that carried the model's p_click, their clicks, and the sum of
    those p_click (the clicks the model expected). From AdImpressed / AdClicked by the
    `delivery_stats` projection; read by delivery.calibration (ADR 0062)."""

    creative_id = models.BigIntegerField()
    model_version = models.CharField(max_length=128)
    position = models.IntegerField()
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    expected_clicks = models.FloatField(default=0.0)

    class Meta:
        db_table = "delivery_creative_calibration"
        constraints = [
            models.UniqueConstraint(
                fields=["creative_id", "model_version", "position"], name="delivery_calibration_uniq"
            )
        ]
