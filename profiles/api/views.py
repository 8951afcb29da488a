"""GET /api/v1/users/<user_id>/profile — a shopper's profile (SPEC §4, scope profiles:read)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adplatform.access import scopes
from adplatform.access.authentication import HasScope
from adplatform.eventlog import projections

from ..selectors import ProfileSnapshot, profile_get

ERROR_UNKNOWN_USER = "No profile for this user."
ERROR_USER_ID = "At most 128 characters."
ERROR_AS_OF = "Must be an RFC 3339 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z."
TOP_INTERESTS = 20


def _scores(scores: dict[str, float]) -> list[dict[str, Any]]:
    return [{"name": k, "score": round(v, 6)} for k, v in list(scores.items())[:TOP_INTERESTS]]


def profile_json(p: ProfileSnapshot, *, lag_seconds: float | None) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "as_of": p.as_of.isoformat(),
        "consent": p.consent,
        "interests": {"categories": _scores(p.categories), "brands": _scores(p.brands)},
        "rfm": {
            "recency_days": None if p.recency_days is None else round(p.recency_days, 4),
            "frequency": p.frequency,
            "orders": p.orders,
            "monetary": f"{p.monetary:.2f}",
        },
        "price_band": p.price_band,
        "devices": p.devices,
        "recent": {"products": list(p.recent_products), "queries": list(p.recent_queries), "cart": list(p.cart)},
        "segments": [{"key": p.segment, "name": p.segment_name}] if p.segment else [],
        "embedding": {"version": p.embedding_version},
        "freshness": {
            "last_event_at": p.last_event_at.isoformat() if p.last_event_at else None,
            "updated_at": p.updated_at.isoformat() if p.updated_at else None,
            "projection_lag_seconds": lag_seconds,
        },
    }


class UserProfileApi(APIView):
    permission_classes = [HasScope(scopes.PROFILES_READ)]

    class OutputSerializer(serializers.Serializer):  # documentation of the response shape
        user_id = serializers.CharField()
        as_of = serializers.DateTimeField()
        consent = serializers.BooleanField()
        interests = serializers.DictField(help_text="categories/brands: [{name, score}], strongest first")
        rfm = serializers.DictField(help_text="recency_days, frequency, orders, monetary")
        price_band = serializers.ChoiceField(choices=["low", "mid", "high"], allow_null=True)
        devices = serializers.DictField(child=serializers.IntegerField())
        recent = serializers.DictField(help_text="products, queries, cart (newest first)")
        segments = serializers.ListField(child=serializers.DictField())
        embedding = serializers.DictField(help_text="version of the shopper's vector space")
        freshness = serializers.DictField(help_text="last_event_at, updated_at, projection_lag_seconds")

    @extend_schema(
        parameters=[OpenApiParameter("as_of", str, description="RFC 3339; default now (point-in-time read)")],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request, user_id: str) -> Response:
        if len(user_id) > 128:
            raise ValidationError({"user_id": [ERROR_USER_ID]})
        as_of = None
        raw = request.query_params.get("as_of")
        if raw is not None:
            try:
                as_of = datetime.fromisoformat(raw)
            except ValueError:
                as_of = None
            if as_of is None or as_of.tzinfo is None:
                raise ValidationError({"as_of": [ERROR_AS_OF]})
        profile = profile_get(user_id=user_id, as_of=as_of)
        if profile is None:
            raise NotFound(ERROR_UNKNOWN_USER)
        lag = projections.status(projections.get_projection("profiles")).lag_seconds
        return Response(profile_json(profile, lag_seconds=None if lag is None else round(lag, 3)))
