from django.urls import path

from .views import EventsIngestApi, UserEraseApi

urlpatterns = [
    path("events", EventsIngestApi.as_view(), name="events-ingest"),
    path("users/<str:user_id>", UserEraseApi.as_view(), name="users-erase"),
]
