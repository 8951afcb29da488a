"""JSON API routes of delivery (under /api/v1/)."""

from django.urls import URLPattern, path

from .views import RankDecideApi

urlpatterns: list[URLPattern] = [path("rank", RankDecideApi.as_view(), name="rank")]
