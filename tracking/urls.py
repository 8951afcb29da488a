"""Storefront-facing URLs outside the JSON API: tracking beacon/redirect, demo storefront."""

from django.urls import URLPattern, path

from .api.views import TrackClickApi, TrackImpressionApi
from .views import StorefrontPage

urlpatterns: list[URLPattern] = [
    path("track/impression/<str:token>", TrackImpressionApi.as_view(), name="track-impression"),
    path("track/click/<str:token>", TrackClickApi.as_view(), name="track-click"),
    path("storefront/", StorefrontPage.as_view(), name="storefront"),
]
