"""Marketplace read models: which world objects have been seeded, under which platform id.

A row is written in the same transaction as the service call that created the platform
object (advertiser, campaign, creative), so a re-run of the seeding never creates an
object twice, and `simulate` can map the platform's ids back to the world's ground truth.
"""

from __future__ import annotations

from django.db import models


class SeededWorld(models.Model):
    """One seeded world (`<size>-<seed>`): where its timeline starts and how far its
    history has been loaded (days below `days_loaded` are complete)."""

    name = models.CharField(max_length=64, primary_key=True)
    size = models.CharField(max_length=16)
    seed = models.IntegerField()
    start = models.DateTimeField()
    days_loaded = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)


class SeededObject(models.Model):
    world = models.ForeignKey(SeededWorld, on_delete=models.CASCADE, related_name="objects_seeded")
    kind = models.CharField(max_length=16)  # advertiser | campaign | creative
    key = models.CharField(max_length=32)  # the world's key (A0000, K00000, C00000)
    platform_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "kind", "key"], name="marketplace_seeded_unique")]
