from django.urls import path

from .views import UserProfileApi

urlpatterns = [
    path("users/<str:user_id>/profile", UserProfileApi.as_view(), name="users-profile"),
]
