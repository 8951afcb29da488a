"""Read models of the profiles app: the profile projection's rows, versioned embeddings in
pgvector (one table, untyped `vector` column, one partial HNSW expression index per
kind × version, ADR 0021), the active-version pointers, and segments."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from pgvector.django import VectorField


class Profile(models.Model):
    """One shopper, folded from their consenting behaviour events (profiles.projections).

    Interest scores are stored decayed to `decay_ref` (the newest consenting event time),
    so an event at any time t adds w·exp(-λ(ref - t)) and the fold is order-independent."""

    user_key = models.TextField(primary_key=True)
    consent = models.BooleanField(default=True)
    consent_at = models.DateTimeField(null=True)
    decay_ref = models.DateTimeField(null=True)
    first_event_at = models.DateTimeField(null=True)
    last_event_at = models.DateTimeField(null=True)
    frequency = models.BigIntegerField(default=0)
    orders = models.BigIntegerField(default=0)
    monetary = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    last_order_at = models.DateTimeField(null=True)
    categories = models.JSONField(default=dict)
    brands = models.JSONField(default=dict)
    products = models.JSONField(default=dict)
    price_sum = models.FloatField(default=0.0)
    price_weight = models.FloatField(default=0.0)
    devices = models.JSONField(default=dict)
    recent_products = models.JSONField(default=list)
    recent_queries = models.JSONField(default=list)
    cart = models.JSONField(default=dict)
    last_position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "profiles_profile"

    def __str__(self) -> str:
        return self.user_key


class EmbeddingSpace(models.Model):
    """The pointer: which version of a kind is served. Switching is one UPDATE."""

    kind = models.CharField(max_length=32, primary_key=True)
    active_version = models.CharField(max_length=128, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "profiles_embedding_space"

    def __str__(self) -> str:
        return f"{self.kind} → {self.active_version or '-'}"


class EmbeddingVersion(models.Model):
    kind = models.CharField(max_length=32)
    version = models.CharField(max_length=128)
    dim = models.PositiveIntegerField()
    model = models.CharField(max_length=200, blank=True)
    index_name = models.CharField(max_length=63, blank=True)
    rows = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    refreshed_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "profiles_embedding_version"
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="profiles_embedding_version_uniq")]

    def __str__(self) -> str:
        return f"{self.kind}@{self.version}"


class Embedding(models.Model):
    """A vector of any dimension; the HNSW index of each (kind, version) casts it to that
    version's dimension, so product/creative text (384) and learned vectors (e.g. 64) share
    one table."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32)
    version = models.CharField(max_length=128)
    key = models.CharField(max_length=128)
    vector = VectorField()
    source_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "profiles_embedding"
        constraints = [models.UniqueConstraint(fields=["kind", "version", "key"], name="profiles_embedding_uniq")]


class SegmentRun(models.Model):
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)
    users = models.BigIntegerField(default=0)
    k = models.PositiveIntegerField(default=0)
    embedding_version = models.CharField(max_length=128, blank=True)
    stats = models.JSONField(default=dict)

    class Meta:
        db_table = "profiles_segment_run"

    def __str__(self) -> str:
        return f"segment run {self.pk} ({self.started_at:%Y-%m-%d %H:%M})"


class Segment(models.Model):
    key = models.SlugField(max_length=128, primary_key=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    size = models.BigIntegerField(default=0)
    active = models.BooleanField(default=True)
    traits = models.JSONField(default=dict)
    run = models.ForeignKey(SegmentRun, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "profiles_segment"
        ordering = ["-active", "-size"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    user_key = models.TextField(primary_key=True)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+", db_column="segment_key")
    distance = models.FloatField(default=0.0)
    run_id = models.BigIntegerField()

    class Meta:
        db_table = "profiles_segment_membership"
        indexes = [models.Index(fields=["segment"], name="profiles_seg_member_seg_idx")]


class ProductDoc(models.Model):
    """The text of a product to embed and the facts filtered NN queries need, folded from
    ProductUpserted events (`product_docs` projection; catalog facts, not personal)."""

    product_id = models.CharField(max_length=128, primary_key=True)
    text = models.TextField()
    text_hash = models.CharField(max_length=64)
    in_stock = models.BooleanField(default=True)
    category_path = ArrayField(models.CharField(max_length=200), default=list)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "profiles_product_doc"
        indexes = [GinIndex(fields=["category_path"], name="profiles_product_doc_cat_gin")]


class EmbeddingEncoder(models.Model):
    """The serialized encoder that produces a learned version's vectors (the two-tower
    shopper tower for `user_learned`), so the vectors of shoppers with new activity can be
    refreshed between retrains on any host (ranking.retrieval). Dropped with its version."""

    kind = models.CharField(max_length=32)
    version = models.CharField(max_length=128)
    artifact = models.BinaryField()
    checkpoint = models.CharField(max_length=64, blank=True)  # "tx_id:position" of the newest event trained on
    created_at = models.DateTimeField()

    class Meta:
        db_table = "profiles_embedding_encoder"
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="profiles_embedding_encoder_uniq")]

    def __str__(self) -> str:
        return f"encoder {self.kind}@{self.version}"
