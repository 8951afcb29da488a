"""API keys. Only a SHA-256 of the key is stored: keys are 256-bit random, so a slow
password hash would add latency to every request without adding security."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class ApiKey(models.Model):
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    scopes = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # Set for advertiser tokens: the key then sees only this advertiser's data.
    advertiser_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "access_api_key"
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or ', '.join(self.scopes)})"
