"""The OpenAPI schema class (settings DEFAULT_SCHEMA_CLASS) and the bearer-key security
scheme. Kept apart from the schema view: DRF imports this module while drf-spectacular's
views module is still loading."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AutoSchema(openapi.AutoSchema):
    """Component names from the serializer's qualified name: every API class nests its own
    `InputSerializer`/`OutputSerializer` (STYLE.md), which drf-spectacular would all name
    "Input"/"Output" — one component for a dozen different bodies."""

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        parts = type(serializer).__qualname__.split(".")
        return "".join(p.removesuffix("Serializer") for p in parts if p != "<locals>")


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """`Authorization: Bearer <key>` (platform keys and advertiser tokens alike)."""

    target_class = "adplatform.access.authentication.ApiKeyAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A platform API key (scopes) or an advertiser token.",
        }
