"""Campaigns API routes. Several operations share a path (GET and POST /campaigns): each
stays its own APIView and `by_method` dispatches on the HTTP method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

from adplatform.api.errors import json_error

from . import views as v

ERROR_METHOD_NOT_ALLOWED = "Method {method} not allowed."


def by_method(**operations: type[APIView]) -> Callable[..., HttpResponse]:
    handlers = {method.upper(): op.as_view() for method, op in operations.items()}
    if "GET" in handlers:
        handlers["HEAD"] = handlers["GET"]

    @csrf_exempt
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        handler = handlers.get(request.method or "")
        if handler is None:
            response = json_error(
                request, 405, "method_not_allowed", ERROR_METHOD_NOT_ALLOWED.format(method=request.method)
            )
            response["Allow"] = ", ".join(sorted(handlers))
            return response
        return handler(request, *args, **kwargs)

    # For the OpenAPI generator: one class exposing every operation's handler.
    attrs = {method.lower(): op.__dict__[method.lower()] for method, op in operations.items()}
    view.cls = type("".join(op.__name__ for op in operations.values()), (APIView,), attrs)  # type: ignore[attr-defined]
    view.initkwargs = {}  # type: ignore[attr-defined]
    return view


urlpatterns: list[URLPattern] = [
    path("advertisers", v.AdvertiserCreateApi.as_view(), name="advertiser-create"),
    path("advertisers/me", v.AdvertiserMeApi.as_view(), name="advertiser-me"),
    path("placements", by_method(get=v.PlacementListApi, post=v.PlacementUpsertApi), name="placements"),
    path("campaigns", by_method(get=v.CampaignListApi, post=v.CampaignCreateApi), name="campaigns"),
    path(
        "campaigns/<int:campaign_id>",
        by_method(get=v.CampaignDetailApi, patch=v.CampaignUpdateApi),
        name="campaign-detail",
    ),
    path("campaigns/<int:campaign_id>/pause", v.CampaignPauseApi.as_view(), name="campaign-pause"),
    path("campaigns/<int:campaign_id>/resume", v.CampaignResumeApi.as_view(), name="campaign-resume"),
    path("creatives", by_method(get=v.CreativeListApi, post=v.CreativeCreateApi), name="creatives"),
    path(
        "creatives/<int:creative_id>",
        by_method(get=v.CreativeDetailApi, patch=v.CreativeUpdateApi),
        name="creative-detail",
    ),
    path("creatives/<int:creative_id>/review", v.CreativeReviewApi.as_view(), name="creative-review"),
    path("reports", v.ReportApi.as_view(), name="reports"),
]
