"""POST /api/v1/catalog/products — upsert products."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adplatform.access import scopes
from adplatform.access.authentication import HasScope

from ..services import ProductInput, products_upsert


class ProductInputSerializer(serializers.Serializer):
    product_id = serializers.CharField(max_length=128)
    title = serializers.CharField(max_length=500)
    category_path = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=10, allow_empty=True, default=list
    )
    brand = serializers.CharField(max_length=200, allow_blank=True, default="")
    price = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", error_messages={"invalid": "Must be a 3-letter ISO 4217 code."})
    url = serializers.URLField(max_length=2048, allow_blank=True, default="")
    image_url = serializers.URLField(max_length=2048, allow_blank=True, default="")
    in_stock = serializers.BooleanField(default=True)


class ProductsUpsertApi(APIView):
    permission_classes = [HasScope(scopes.EVENTS_WRITE)]

    class InputSerializer(serializers.Serializer):
        products = serializers.ListField(child=ProductInputSerializer(), min_length=1, max_length=1000)

    class OutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        unchanged = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        ser = self.InputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        items = [
            ProductInput(**{**p, "category_path": tuple(p["category_path"])}) for p in ser.validated_data["products"]
        ]
        result = products_upsert(products=items)
        return Response(self.OutputSerializer(result).data)
