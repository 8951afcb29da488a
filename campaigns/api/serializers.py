"""Field types and JSON shapes shared by the campaigns API views (SPEC §4): money as
decimal strings, RFC 3339 times with an explicit offset, unknown input keys rejected."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from campaigns import selectors, services, validation
from campaigns.models import Campaign, Creative

ERROR_UNKNOWN_FIELD = "Unknown field."
ERROR_NAIVE_DATETIME = validation.ERROR_TZ_AWARE


class StrictSerializer(serializers.Serializer):
    """Rejects keys it does not know: a typo like "daily_budjet" must not be ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError({k: [ERROR_UNKNOWN_FIELD] for k in sorted(unknown)})
        return super().to_internal_value(data)


class MoneyField(serializers.DecimalField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=14, decimal_places=4, **kwargs)

    def to_representation(self, value: Any) -> Any:
        return services.money_str(value)


class AwareDateTimeField(serializers.DateTimeField):
    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_naive(value):
            raise serializers.ValidationError(ERROR_NAIVE_DATETIME)
        return value


class DaypartSerializer(StrictSerializer):
    days = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), allow_empty=False)
    start = serializers.CharField(max_length=5)
    end = serializers.CharField(max_length=5)


class FrequencyCapSerializer(StrictSerializer):
    scope = serializers.ChoiceField(choices=validation.CAP_SCOPES)
    max = serializers.IntegerField(min_value=1, max_value=1_000_000)
    window_seconds = serializers.IntegerField(min_value=60, max_value=90 * 86400)


def _str_list() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=200, allow_empty=True
    )


class TargetingSerializer(StrictSerializer):
    categories = _str_list()
    keywords = _str_list()
    segments = _str_list()
    placements = _str_list()
    page_types = _str_list()
    devices = _str_list()
    geo = _str_list()


class VariantSerializer(StrictSerializer):
    headline = serializers.CharField(max_length=120)
    body = serializers.CharField(max_length=500, allow_null=True, required=False, allow_blank=True)


class CampaignOutput(serializers.Serializer):
    id = serializers.IntegerField()
    advertiser_id = serializers.IntegerField()
    name = serializers.CharField()
    objective = serializers.CharField()
    bid_model = serializers.CharField()
    bid = MoneyField()
    daily_budget = MoneyField(allow_null=True)
    total_budget = MoneyField(allow_null=True)
    currency = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True)
    timezone = serializers.CharField()
    dayparts = DaypartSerializer(many=True)
    pacing = serializers.CharField()
    frequency_caps = FrequencyCapSerializer(many=True)
    targeting = TargetingSerializer()
    status = serializers.SerializerMethodField()
    spent_today = serializers.SerializerMethodField()
    spent_total = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def _spend(self, c: Campaign) -> tuple[Decimal, Decimal]:
        cache: dict[int, tuple[Decimal, Decimal]] = self.context.get("_spend") or {}
        if not cache:
            self.context["_spend"] = cache  # type: ignore[index]
        if c.pk not in cache:
            cache[c.pk] = selectors.spend_of(campaign_id=c.pk, at=timezone.now(), timezone_name=c.timezone)
        return cache[c.pk]

    def get_status(self, c: Campaign) -> str:
        return selectors.effective_status(c, now=timezone.now())

    def get_spent_today(self, c: Campaign) -> str | None:
        return services.money_str(self._spend(c)[0])

    def get_spent_total(self, c: Campaign) -> str | None:
        return services.money_str(self._spend(c)[1])


class CreativeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    campaign_id = serializers.IntegerField()
    headline = serializers.CharField()
    body = serializers.CharField()
    image_url = serializers.CharField()
    landing_url = serializers.CharField()
    product_id = serializers.CharField(allow_null=True)
    variants = VariantSerializer(many=True)
    status = serializers.CharField()
    review_reason = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_review_reason(self, c: Creative) -> str | None:
        return c.review_reason or None


class AdvertiserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    currency = serializers.CharField()
    timezone = serializers.CharField()


class PlacementOutput(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    page_types = serializers.ListField(child=serializers.CharField())
    slots = serializers.IntegerField()
    floor_cpm = MoneyField()


class ReportMetricsOutput(serializers.Serializer):
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    conversions = serializers.IntegerField()
    spend = serializers.CharField()
    revenue = serializers.CharField()
    ctr = serializers.FloatField(allow_null=True)
    cvr = serializers.FloatField(allow_null=True)
    cpc = serializers.CharField(allow_null=True)
    cpa = serializers.CharField(allow_null=True)
    roas = serializers.FloatField(allow_null=True)


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def report_metrics(line: selectors.ReportLine) -> dict[str, Any]:
    return {
        "impressions": line.impressions,
        "clicks": line.clicks,
        "conversions": line.conversions,
        "spend": services.money_str(line.spend),
        "revenue": services.money_str(line.revenue),
        "ctr": _ratio(line.ctr),
        "cvr": _ratio(line.cvr),
        "cpc": services.money_str(line.cpc) if line.cpc is not None else None,
        "cpa": services.money_str(line.cpa) if line.cpa is not None else None,
        "roas": _ratio(line.roas),
    }
