"""Campaigns API (SPEC §4): one small APIView per operation, each with its input/output
serializers nested inside. Views parse, call one service or selector, and render.

Advertiser tokens see only their own advertiser: another advertiser's object answers
404 exactly like a missing one, and nothing is changed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adplatform.access import scopes
from adplatform.access.authentication import (
    ERROR_ADVERTISER_TOKEN_REQUIRED,
    AnyValidKey,
    HasScope,
    IsAdvertiser,
    principal_of,
)
from campaigns import selectors, services, validation
from campaigns.validation import RuleViolationError

from .serializers import (
    AdvertiserOutput,
    AwareDateTimeField,
    CampaignOutput,
    CreativeOutput,
    DaypartSerializer,
    FrequencyCapSerializer,
    MoneyField,
    PlacementOutput,
    ReportMetricsOutput,
    StrictSerializer,
    TargetingSerializer,
    VariantSerializer,
    report_metrics,
)

ERROR_RANGE_ORDER = "'from' must not be after 'to'."
ERROR_RANGE_TOO_LONG = "At most 366 days per report."
MAX_REPORT_DAYS = 366


def _advertiser_id(request: Request) -> int:
    """Never None in the advertiser API: a None here would widen a query to everyone."""
    advertiser_id = principal_of(request).advertiser_id
    if advertiser_id is None:
        raise exceptions.PermissionDenied(ERROR_ADVERTISER_TOKEN_REQUIRED)
    return advertiser_id


def _actor(request: Request) -> str:
    return f"api-key:{principal_of(request).key_id}"


class CampaignsApiView(APIView):
    """Turns the services' errors into the one API error shape."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RuleViolationError):
            exc = exceptions.ValidationError(exc.errors)
        elif isinstance(exc, services.NotFoundError):
            exc = exceptions.NotFound(str(exc))
        return super().handle_exception(exc)


# --- operator endpoints ------------------------------------------------------------------


class AdvertiserCreateApi(CampaignsApiView):
    permission_classes = [HasScope(scopes.ADVERTISERS_WRITE)]

    class InputSerializer(StrictSerializer):
        # Loose types here; the rules (services) report every bad field at once.
        name = serializers.CharField(max_length=200, allow_blank=True)
        currency = serializers.CharField(max_length=16, required=False)
        timezone = serializers.CharField(max_length=128, required=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = services.advertiser_onboard(
            name=v["name"], currency=v.get("currency"), timezone_name=v.get("timezone"), actor=_actor(request)
        )
        out = {"id": result.advertiser_id, "name": result.name, "token": result.token}
        return Response(self.OutputSerializer(out).data, status=status.HTTP_201_CREATED)


class PlacementUpsertApi(CampaignsApiView):
    permission_classes = [HasScope(scopes.PLACEMENTS_WRITE)]

    class InputSerializer(StrictSerializer):
        key = serializers.CharField(max_length=64)
        page_types = serializers.ListField(child=serializers.CharField(max_length=32), allow_empty=False)
        slots = serializers.IntegerField()
        floor_cpm = MoneyField()

    class OutputSerializer(PlacementOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        placement_id, created = services.placement_upsert(spec=data.validated_data, actor=_actor(request))
        placement = selectors.placement_list().get(pk=placement_id)
        return Response(
            self.OutputSerializer(placement).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PlacementListApi(CampaignsApiView):
    permission_classes = [AnyValidKey]

    class OutputSerializer(serializers.Serializer):
        placements = PlacementOutput(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer({"placements": selectors.placement_list()}).data)


class CreativeReviewApi(CampaignsApiView):
    permission_classes = [HasScope(scopes.CREATIVES_REVIEW)]

    class InputSerializer(StrictSerializer):
        decision = serializers.ChoiceField(choices=["approve", "reject"])
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    class OutputSerializer(CreativeOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request, creative_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        services.creative_review(
            creative_id=creative_id, decision=v["decision"], reason=v.get("reason", ""), actor=_actor(request)
        )
        creative = selectors.creative_get(creative_id=creative_id, advertiser_id=None)
        return Response(self.OutputSerializer(creative).data)


# --- advertiser API ------------------------------------------------------------------------


class AdvertiserMeApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class OutputSerializer(AdvertiserOutput):
        pass

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        advertiser = selectors.advertiser_get(advertiser_id=_advertiser_id(request))
        if advertiser is None:
            raise exceptions.NotFound(services.ERROR_ADVERTISER_NOT_FOUND)
        return Response(self.OutputSerializer(advertiser).data)


class CampaignInput(StrictSerializer):
    name = serializers.CharField(max_length=200, allow_blank=True)
    objective = serializers.ChoiceField(choices=validation.OBJECTIVES)
    bid_model = serializers.ChoiceField(choices=validation.BID_MODELS)
    bid = MoneyField()
    daily_budget = MoneyField(required=False, allow_null=True)
    total_budget = MoneyField(required=False, allow_null=True)
    currency = serializers.CharField(max_length=16, required=False)
    start = AwareDateTimeField()
    end = AwareDateTimeField(required=False, allow_null=True)
    timezone = serializers.CharField(max_length=128, required=False)
    dayparts = DaypartSerializer(many=True, required=False)
    pacing = serializers.ChoiceField(choices=validation.PACINGS, required=False)
    frequency_caps = FrequencyCapSerializer(many=True, required=False)
    targeting = TargetingSerializer(required=False)


def _plain(value: Any) -> Any:
    """Validated nested data (OrderedDicts) → plain dicts/lists for the services."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class CampaignListApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class OutputSerializer(serializers.Serializer):
        campaigns = CampaignOutput(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        campaigns = selectors.campaign_list(advertiser_id=_advertiser_id(request))
        return Response(self.OutputSerializer({"campaigns": campaigns}).data)


class CampaignCreateApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class InputSerializer(CampaignInput):
        status = serializers.ChoiceField(choices=["active", "draft"], required=False)

    class OutputSerializer(CampaignOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        spec = _plain(dict(data.validated_data))
        initial_status = spec.pop("status", "active")
        campaign_id = services.campaign_create(
            advertiser_id=_advertiser_id(request), spec=spec, actor=_actor(request), status=initial_status
        )
        campaign = selectors.campaign_get(campaign_id=campaign_id, advertiser_id=_advertiser_id(request))
        return Response(self.OutputSerializer(campaign).data, status=status.HTTP_201_CREATED)


def _own_campaign(request: Request, campaign_id: int) -> Any:
    campaign = selectors.campaign_get(campaign_id=campaign_id, advertiser_id=_advertiser_id(request))
    if campaign is None:
        raise exceptions.NotFound(services.ERROR_CAMPAIGN_NOT_FOUND)
    return campaign


class CampaignDetailApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class OutputSerializer(CampaignOutput):
        pass

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(self.OutputSerializer(_own_campaign(request, campaign_id)).data)


class CampaignUpdateApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class InputSerializer(CampaignInput):
        status = serializers.ChoiceField(choices=["active", "paused"], required=False)

    class OutputSerializer(CampaignOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request: Request, campaign_id: int) -> Response:
        _own_campaign(request, campaign_id)  # 404 before 400: never reveal anything about others' objects
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.campaign_update(
            campaign_id=campaign_id,
            changes=_plain(dict(data.validated_data)),
            actor=_actor(request),
            advertiser_id=_advertiser_id(request),
        )
        return Response(self.OutputSerializer(_own_campaign(request, campaign_id)).data)


class CampaignPauseApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class OutputSerializer(CampaignOutput):
        pass

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request: Request, campaign_id: int) -> Response:
        services.campaign_pause(campaign_id=campaign_id, actor=_actor(request), advertiser_id=_advertiser_id(request))
        return Response(self.OutputSerializer(_own_campaign(request, campaign_id)).data)


class CampaignResumeApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class OutputSerializer(CampaignOutput):
        pass

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request: Request, campaign_id: int) -> Response:
        services.campaign_resume(campaign_id=campaign_id, actor=_actor(request), advertiser_id=_advertiser_id(request))
        return Response(self.OutputSerializer(_own_campaign(request, campaign_id)).data)


class CreativeListApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class FilterSerializer(StrictSerializer):
        campaign_id = serializers.IntegerField(required=False, min_value=1)

    class OutputSerializer(serializers.Serializer):
        creatives = CreativeOutput(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        creatives = selectors.creative_list(
            advertiser_id=_advertiser_id(request), campaign_id=filters.validated_data.get("campaign_id")
        )
        return Response(self.OutputSerializer({"creatives": creatives}).data)


class CreativeInput(StrictSerializer):
    headline = serializers.CharField(max_length=120)
    body = serializers.CharField(max_length=500, required=False, allow_blank=True, allow_null=True)
    image_url = serializers.CharField(max_length=2048)
    landing_url = serializers.CharField(max_length=2048)
    product_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    variants = VariantSerializer(many=True, required=False)


class CreativeCreateApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class InputSerializer(CreativeInput):
        campaign_id = serializers.IntegerField()

    class OutputSerializer(CreativeOutput):
        pass

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        spec = _plain(dict(data.validated_data))
        campaign_id = spec.pop("campaign_id")
        creative_id = services.creative_create(
            advertiser_id=_advertiser_id(request), campaign_id=campaign_id, spec=spec, actor=_actor(request)
        )
        creative = selectors.creative_get(creative_id=creative_id, advertiser_id=_advertiser_id(request))
        return Response(self.OutputSerializer(creative).data, status=status.HTTP_201_CREATED)


def _own_creative(request: Request, creative_id: int) -> Any:
    creative = selectors.creative_get(creative_id=creative_id, advertiser_id=_advertiser_id(request))
    if creative is None:
        raise exceptions.NotFound(services.ERROR_CREATIVE_NOT_FOUND)
    return creative


class CreativeDetailApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class OutputSerializer(CreativeOutput):
        pass

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, creative_id: int) -> Response:
        return Response(self.OutputSerializer(_own_creative(request, creative_id)).data)


class CreativeUpdateApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class InputSerializer(CreativeInput):
        status = serializers.ChoiceField(choices=["paused", "approved"], required=False)

    class OutputSerializer(CreativeOutput):
        pass

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request: Request, creative_id: int) -> Response:
        _own_creative(request, creative_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = _plain(dict(data.validated_data))
        target = changes.pop("status", None)
        if changes:
            services.creative_update(
                creative_id=creative_id,
                changes=changes,
                actor=_actor(request),
                advertiser_id=_advertiser_id(request),
            )
        elif target is not None:
            services.creative_set_paused(
                creative_id=creative_id,
                paused=target == "paused",
                actor=_actor(request),
                advertiser_id=_advertiser_id(request),
            )
        return Response(self.OutputSerializer(_own_creative(request, creative_id)).data)


class ReportApi(CampaignsApiView):
    permission_classes = [IsAdvertiser]

    class FilterSerializer(StrictSerializer):
        # "from" is a Python keyword: declared below via fields mapping.
        to = serializers.DateField(required=False)
        group_by = serializers.ChoiceField(choices=selectors.GROUP_BY, required=False, default="day")
        campaign_id = serializers.IntegerField(required=False, min_value=1)

        def get_fields(self) -> dict[str, serializers.Field]:
            fields = super().get_fields()
            fields["from"] = serializers.DateField(required=False)
            return fields

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            today = timezone.now().date()
            to: date = attrs.get("to") or today
            frm: date = attrs.get("from") or to - timedelta(days=29)
            if frm > to:
                raise serializers.ValidationError({"from": [ERROR_RANGE_ORDER]})
            if (to - frm).days >= MAX_REPORT_DAYS:
                raise serializers.ValidationError({"from": [ERROR_RANGE_TOO_LONG]})
            return {**attrs, "from": frm, "to": to}

    class OutputSerializer(serializers.Serializer):
        rows = serializers.ListField(child=serializers.DictField(), help_text="group key + metrics")
        totals = ReportMetricsOutput()

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="first UTC day (YYYY-MM-DD), default: 29 days before 'to'"),
            OpenApiParameter("to", str, description="last UTC day (YYYY-MM-DD), default: today"),
            OpenApiParameter("group_by", str, enum=list(selectors.GROUP_BY)),
            OpenApiParameter("campaign_id", int),
        ],
        responses=OutputSerializer,
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        advertiser_id = _advertiser_id(request)
        campaign_id = f.get("campaign_id")
        if campaign_id is not None:
            _own_campaign(request, campaign_id)
        group_by = f["group_by"]
        lines = selectors.report_lines(
            advertiser_id=advertiser_id,
            date_from=f["from"],
            date_to=f["to"],
            group_by=group_by,
            campaign_id=campaign_id,
        )
        key_name = {"day": "day", "campaign": "campaign_id", "creative": "creative_id"}.get(group_by, group_by)
        names: dict[Any, str] = {}
        if group_by == "campaign":
            names = dict(selectors.campaign_list(advertiser_id=advertiser_id).values_list("id", "name"))
        elif group_by == "creative":
            names = dict(selectors.creative_list(advertiser_id=advertiser_id).values_list("id", "headline"))
        rows = []
        for line in lines:
            key = line.key.isoformat() if isinstance(line.key, date) else line.key
            label = {"name": names.get(line.key)} if group_by in ("campaign", "creative") else {}
            rows.append({key_name: key, **label, **report_metrics(line)})
        advertiser = selectors.advertiser_get(advertiser_id=advertiser_id)
        return Response(
            {
                "from": f["from"].isoformat(),
                "to": f["to"].isoformat(),
                "group_by": group_by,
                "currency": advertiser.currency if advertiser else None,
                "rows": rows,
                "totals": report_metrics(selectors.report_total(lines)),
            }
        )


def _name_schema_components() -> None:
    """Nested serializers are all called Input/Output; give each its own OpenAPI
    component name ("CampaignCreateInput") so the schema has no collisions."""
    for name, obj in list(globals().items()):
        if isinstance(obj, type) and issubclass(obj, APIView) and name.endswith("Api"):
            for attr in ("InputSerializer", "OutputSerializer", "FilterSerializer"):
                nested = obj.__dict__.get(attr)
                if nested is not None:
                    set_override(nested, "component_name", name.removesuffix("Api") + attr.removesuffix("Serializer"))


_name_schema_components()
