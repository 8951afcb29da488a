from django.urls import path

from .views import EventsIngestApi

urlpatterns = [path("events", EventsIngestApi.as_view(), name="events-ingest")]
