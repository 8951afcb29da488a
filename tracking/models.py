"""Read models of the tracking app (never saved directly).

`RecentImpression` is the frequency read model: written by the impression service in the
transaction that appends `AdImpressed` (current for the shopper's next /rank) and rebuilt
from the log by the `tracking_frequency` projection. The `Attribution*` tables are the
state of the `attribution` projection (clicks seen, orders seen and what they were
attributed to). `ReportRejection` counts ad events reported through POST /events whose
token was not honoured (`ad_reports` projection). Ids of other apps' rows carry no
database constraint: each side is rebuilt on its own."""

from __future__ import annotations

from django.db import models


class RecentImpression(models.Model):
    event_id = models.UUIDField(primary_key=True)  # the AdImpressed event
    user_key = models.CharField(max_length=128)
    at = models.DateTimeField()
    campaign_id = models.BigIntegerField()
    creative_id = models.BigIntegerField()

    class Meta:
        db_table = "tracking_recent_impression"
        indexes = [
            # recent_impressions(user_id=, since=): an index-only range scan, newest first
            models.Index(
                fields=["user_key", "-at"], include=["campaign_id", "creative_id"], name="tracking_recent_user_at"
            ),
        ]


class AttributionClick(models.Model):
    event_id = models.UUIDField(primary_key=True)  # the AdClicked event
    user_key = models.CharField(max_length=128)
    clicked_at = models.DateTimeField()
    request_id = models.CharField(max_length=64)
    creative_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField()
    advertiser_id = models.BigIntegerField()
    placement = models.CharField(max_length=128)
    pricing_model = models.CharField(max_length=3)
    price = models.CharField(max_length=40)  # decimal text exactly as the click event carries it
    currency = models.CharField(max_length=3)
    segment = models.CharField(max_length=128, null=True)

    class Meta:
        db_table = "tracking_attribution_click"
        indexes = [models.Index(fields=["user_key", "clicked_at"], name="tracking_click_user_at")]


class AttributionOrder(models.Model):
    id = models.BigAutoField(primary_key=True)
    user_key = models.CharField(max_length=128)
    order_id = models.CharField(max_length=128)
    ordered_at = models.DateTimeField()
    revenue = models.CharField(max_length=40)  # decimal text exactly as the order carries it
    currency = models.CharField(max_length=3)
    click_event_id = models.UUIDField(null=True)  # the AdClicked it was attributed to
    conversion_event_id = models.UUIDField(null=True)  # the ConversionAttributed appended

    class Meta:
        db_table = "tracking_attribution_order"
        constraints = [models.UniqueConstraint(fields=["user_key", "order_id"], name="tracking_order_user_order_uniq")]
        indexes = [models.Index(fields=["user_key", "ordered_at"], name="tracking_order_user_at")]


class ReportRejection(models.Model):
    reason = models.CharField(max_length=32, primary_key=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        db_table = "tracking_report_rejection"
