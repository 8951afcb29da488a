"""Product read model, kept in step with ProductUpserted events inside the same
transaction (inline projection)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Product(models.Model):
    product_id = models.CharField(max_length=128, primary_key=True)
    title = models.CharField(max_length=500)
    category_path = ArrayField(models.CharField(max_length=200), default=list)
    brand = models.CharField(max_length=200, blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3)
    url = models.URLField(max_length=2048, blank=True)
    image_url = models.URLField(max_length=2048, blank=True)
    in_stock = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "catalog_product"

    def __str__(self) -> str:
        return f"{self.title} ({self.product_id})"

    @property
    def category(self) -> str:
        return self.category_path[-1] if self.category_path else ""
