from django.urls import path

from .views import ModelChampionGetApi, ModelScoreApi

urlpatterns = [
    path("models/champion", ModelChampionGetApi.as_view(), name="models-champion"),
    path("models/score", ModelScoreApi.as_view(), name="models-score"),
]
