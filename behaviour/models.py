"""Read models of the activity projection (rebuildable from the log at any time)."""

from __future__ import annotations

from django.db import models


class UserActivity(models.Model):
    user_key = models.TextField(primary_key=True)
    events = models.BigIntegerField(default=0)
    page_views = models.BigIntegerField(default=0)
    product_views = models.BigIntegerField(default=0)
    searches = models.BigIntegerField(default=0)
    cart_adds = models.BigIntegerField(default=0)
    purchases = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "behaviour_user_activity"
        verbose_name_plural = "user activity"


class ProductActivity(models.Model):
    product_id = models.TextField(primary_key=True)
    views = models.BigIntegerField(default=0)
    cart_adds = models.BigIntegerField(default=0)
    purchases = models.BigIntegerField(default=0)
    units_sold = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    last_event_at = models.DateTimeField()

    class Meta:
        db_table = "behaviour_product_activity"
        verbose_name_plural = "product activity"
