"""Root URLs: admin, the versioned API, its schema and docs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from adplatform.api.schema import CachedSchemaApi

api_v1 = [
    path("", include("behaviour.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("profiles.api.urls")),
    path("", include("ranking.api.urls")),
    path("", include("delivery.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", CachedSchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    # storefront-facing pages outside the JSON API: tracking redirects/beacons, demo storefront
    path("", include("tracking.urls")),
]

handler400 = "adplatform.api.errors.handler400"
handler403 = "adplatform.api.errors.handler403"
handler404 = "adplatform.api.errors.handler404"
handler500 = "adplatform.api.errors.handler500"
