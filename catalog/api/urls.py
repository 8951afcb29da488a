from django.urls import path

from .views import ProductsUpsertApi

urlpatterns = [path("catalog/products", ProductsUpsertApi.as_view(), name="catalog-products-upsert")]
