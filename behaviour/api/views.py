"""POST /api/v1/events — behaviour ingestion."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adplatform.access import scopes
from adplatform.access.authentication import HasScope, principal_of
from adplatform.api.errors import ERROR_VALIDATION, PayloadTooLarge, error_body
from adplatform.eventlog.services import user_erase

from ..services import events_ingest

ERROR_BODY_NOT_JSON = "Body is not valid JSON."
ERROR_EVENTS_FIELD = "Must be a list of 1 to {n} events."
ERROR_TOO_MANY = "At most {n} events per request."
ERROR_BODY_TOO_LARGE = "Body exceeds {n} bytes."


class EventsIngestApi(APIView):
    permission_classes = [HasScope(scopes.EVENTS_WRITE)]

    class InputSerializer(serializers.Serializer):  # documentation only: parsing is hand-written
        events = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=1000)

    class OutputSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = serializers.ListField(
            child=inline_serializer(
                "EventRejection",
                {
                    "index": serializers.IntegerField(),
                    "event_id": serializers.CharField(allow_null=True),
                    "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
                },
            )
        )

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer},
        examples=[
            OpenApiExample(
                "one product view",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "0b0e5f5e-8f1e-4c8e-9a43-6b1f0a6b9f10",
                            "type": "product_view",
                            "user_id": "u-123",
                            "timestamp": "2026-11-22T10:00:00Z",
                            "properties": {"product_id": "sku-1"},
                        }
                    ]
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        limit = settings.MAX_REQUEST_BODY_BYTES
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(ERROR_BODY_TOO_LARGE.format(n=limit))
        try:
            body: Any = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return _invalid({"body": [ERROR_BODY_NOT_JSON]})
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            return _invalid({"events": [ERROR_EVENTS_FIELD.format(n=settings.MAX_EVENTS_PER_REQUEST)]})
        if len(events) > settings.MAX_EVENTS_PER_REQUEST:
            raise PayloadTooLarge(ERROR_TOO_MANY.format(n=settings.MAX_EVENTS_PER_REQUEST))
        result = events_ingest(raw_events=events, source="api")
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": [asdict(r) for r in result.rejected],
            },
            status=status.HTTP_202_ACCEPTED,
        )


def _invalid(fields: dict[str, list[str]]) -> Response:
    return Response(error_body(400, "invalid", ERROR_VALIDATION, fields), status=400)


class UserEraseApi(APIView):
    """DELETE /api/v1/users/<user_id>: erase a shopper's personal data everywhere."""

    permission_classes = [HasScope(scopes.USERS_ERASE)]

    class OutputSerializer(serializers.Serializer):
        subject = serializers.CharField(help_text="keyed hash of the erased id (the id itself is not kept)")
        events_redacted = serializers.IntegerField()

    @extend_schema(request=None, responses={200: OutputSerializer})
    def delete(self, request: Request, user_id: str) -> Response:
        if not user_id or len(user_id) > 128:
            return _invalid({"user_id": ["At most 128 characters."]})
        result = user_erase(user_key=user_id, actor=f"api-key:{principal_of(request).key_id}")
        return Response(self.OutputSerializer(result).data)
