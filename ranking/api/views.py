"""Model-serving API (scope ads:rank): GET /models/champion — the version this process
serves; POST /models/score — the champion's calibrated p_click / p_conversion for a list of
candidates (re-ranking tools, offline checks). /rank (delivery) uses the same scorer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adplatform.access import scopes
from adplatform.access.authentication import HasScope
from profiles import selectors as profiles

from ..selectors import CandidateItem, ScoringRequest, champion_scorer


class ModelChampionGetApi(APIView):
    permission_classes = [HasScope(scopes.ADS_RANK)]

    class OutputSerializer(serializers.Serializer):
        model_version = serializers.CharField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        return Response({"model_version": champion_scorer().version})


class ModelScoreApi(APIView):
    permission_classes = [HasScope(scopes.ADS_RANK)]

    class InputSerializer(serializers.Serializer):
        class CandidateSerializer(serializers.Serializer):
            creative_id = serializers.IntegerField(min_value=1)
            campaign_id = serializers.IntegerField(min_value=0, default=0)
            advertiser_id = serializers.IntegerField(min_value=0, default=0)
            product_id = serializers.CharField(max_length=128, required=False, allow_null=True, default=None)
            category_path = serializers.ListField(
                child=serializers.CharField(max_length=200), max_length=10, required=False, default=list
            )
            brand = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)
            price = serializers.FloatField(min_value=0, required=False, allow_null=True, default=None)

        class ContextSerializer(serializers.Serializer):
            page_type = serializers.ChoiceField(choices=["home", "category", "product", "search", "cart"])
            category_id = serializers.CharField(max_length=200, required=False, allow_null=True)
            product_id = serializers.CharField(max_length=128, required=False, allow_null=True)
            device = serializers.CharField(max_length=32, required=False, allow_null=True)
            placement = serializers.CharField(max_length=100, required=False, allow_null=True)

        user_id = serializers.CharField(max_length=128)
        context = ContextSerializer()  # type: ignore[assignment]  # a field named like Serializer.context
        candidates = CandidateSerializer(many=True, min_length=1, max_length=200)  # type: ignore[call-arg]

    class OutputSerializer(serializers.Serializer):
        class ScoreSerializer(serializers.Serializer):
            creative_id = serializers.IntegerField()
            p_click = serializers.FloatField()
            p_conversion = serializers.FloatField()

        model_version = serializers.CharField()
        scores = ScoreSerializer(many=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data: dict[str, Any] = s.validated_data
        now = datetime.now(UTC)
        context = {k: v for k, v in data["context"].items() if v is not None}
        context["hour"] = now.hour
        items = [
            CandidateItem(
                creative_id=c["creative_id"],
                campaign_id=c["campaign_id"],
                advertiser_id=c["advertiser_id"],
                product_id=c["product_id"],
                category_path=tuple(c["category_path"]),
                brand=c["brand"],
                price=c["price"],
            )
            for c in data["candidates"]
        ]
        scorer = champion_scorer()
        batch = scorer.score(
            ScoringRequest(
                user_id=data["user_id"],
                profile=profiles.profile_get(user_id=data["user_id"]),
                context=context,
                candidates=items,
            )
        )
        scores = [
            {"creative_id": it.creative_id, "p_click": float(pc), "p_conversion": float(pv)}
            for it, pc, pv in zip(items, batch.p_click, batch.p_conversion, strict=True)
        ]
        return Response({"model_version": scorer.version, "scores": scores})
