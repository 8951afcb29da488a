"""Read models of the campaigns app.

Advertiser, Campaign, Creative and Placement are the `campaigns` state projection of the
event log (written inline by the services and rebuildable from zero, see projections.py);
never save them directly. Spend rows are the budget ledger written by
`services.budget_charge` under concurrency; report rows belong to the `reports`
projection. Membership (which staff user acts for which advertiser) is access
configuration, like API keys, not a domain fact.

Foreign keys between read models carry no database constraint: a rebuild truncates and
replays the tables, and memberships/spend must survive that.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Advertiser(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    timezone = models.CharField(max_length=64)
    version = models.IntegerField(default=0)  # stream_version of the last applied event
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "campaigns_advertiser"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class AdvertiserMembership(models.Model):
    """A staff user who works for an advertiser in the admin."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="advertiser_memberships")
    advertiser = models.ForeignKey(
        Advertiser, on_delete=models.DO_NOTHING, db_constraint=False, related_name="memberships"
    )

    class Meta:
        db_table = "campaigns_advertiser_membership"
        constraints = [models.UniqueConstraint(fields=["user", "advertiser"], name="campaigns_membership_uniq")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.advertiser_id}"


class Campaign(models.Model):
    class Objective(models.TextChoices):
        CLICKS = "clicks"
        CONVERSIONS = "conversions"
        REACH = "reach"

    class BidModel(models.TextChoices):
        CPC = "cpc", "CPC (per click)"
        CPM = "cpm", "CPM (per 1000 impressions)"
        CPA = "cpa", "CPA (per conversion)"

    class Pacing(models.TextChoices):
        EVEN = "even"
        ASAP = "asap"

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        PAUSED = "paused"
        ENDED = "ended"

    id = models.BigAutoField(primary_key=True)
    advertiser = models.ForeignKey(
        Advertiser, on_delete=models.DO_NOTHING, db_constraint=False, related_name="campaigns"
    )
    name = models.CharField(max_length=200)
    objective = models.CharField(max_length=16, choices=Objective.choices)
    bid_model = models.CharField(max_length=8, choices=BidModel.choices)
    bid = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3)
    daily_budget = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    total_budget = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64)
    # [{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}], campaign-local time
    dayparts = models.JSONField(default=list, blank=True)
    pacing = models.CharField(max_length=8, choices=Pacing.choices, default=Pacing.EVEN)
    # [{"scope": "campaign|creative", "max": int, "window_seconds": int}]
    frequency_caps = models.JSONField(default=list, blank=True)
    # {"categories": [...], "keywords": [...], ...}; a missing or empty list means "any"
    targeting = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    version = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "campaigns_campaign"
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "start"], name="campaigns_status_start_idx")]

    def __str__(self) -> str:
        return self.name


class Creative(models.Model):
    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review", "Pending review"
        APPROVED = "approved"
        REJECTED = "rejected"
        PAUSED = "paused"

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.DO_NOTHING, db_constraint=False, related_name="creatives")
    advertiser = models.ForeignKey(
        Advertiser, on_delete=models.DO_NOTHING, db_constraint=False, related_name="creatives"
    )
    headline = models.CharField(max_length=120)
    body = models.CharField(max_length=500, blank=True)
    image_url = models.URLField(max_length=2048)
    landing_url = models.URLField(max_length=2048)
    product_id = models.CharField(max_length=128, null=True, blank=True)
    # [{"headline": "...{category}...", "body": "..."|null}]
    variants = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING_REVIEW)
    review_reason = models.CharField(max_length=500, blank=True)
    version = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "campaigns_creative"
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.headline


class Placement(models.Model):
    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=64, unique=True)
    page_types = models.JSONField(default=list)
    slots = models.PositiveIntegerField()
    floor_cpm = models.DecimalField(max_digits=14, decimal_places=4)
    version = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "campaigns_placement"
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class CampaignSpend(models.Model):
    """Lifetime spend of a campaign (budget ledger, see services.budget_charge)."""

    campaign_id = models.BigIntegerField(primary_key=True)
    spent = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        db_table = "campaigns_spend_total"


class CampaignDaySpend(models.Model):
    """Spend of a campaign on one campaign-local calendar day."""

    campaign_id = models.BigIntegerField()
    day = models.DateField()
    spent = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        db_table = "campaigns_spend_day"
        constraints = [models.UniqueConstraint(fields=["campaign_id", "day"], name="campaigns_spend_day_uniq")]


class ReportRow(models.Model):
    """One cell of the `reports` projection: UTC day × campaign × creative × placement × segment."""

    day = models.DateField()
    advertiser_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField()
    creative_id = models.BigIntegerField()
    placement = models.CharField(max_length=64)
    segment = models.CharField(max_length=128)  # "" = no segment
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    conversions = models.BigIntegerField(default=0)
    spend = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=4, default=0)

    class Meta:
        db_table = "campaigns_report_row"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "campaign_id", "creative_id", "placement", "segment"], name="campaigns_report_row_uniq"
            )
        ]
        indexes = [models.Index(fields=["advertiser_id", "day"], name="campaigns_report_adv_day_idx")]
