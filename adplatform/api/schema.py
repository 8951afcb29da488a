"""OpenAPI schema view, generated once per process under a lock.

drf-spectacular's extension loading is not thread-safe (tfranzel/drf-spectacular#1122:
sporadic import errors when two threads build the schema at once under gunicorn
--threads); the schema is static for a process, so build it once."""

from __future__ import annotations

import threading
from typing import Any

from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

_lock = threading.Lock()
_cache: dict[str, Any] = {}


class CachedSchemaApi(SpectacularAPIView):
    def _get_schema_response(self, request: Request) -> Response:
        with _lock:
            if "schema" not in _cache:
                generator = self.generator_class(urlconf=self.urlconf, api_version=None, patterns=self.patterns)
                _cache["schema"] = generator.get_schema(request=request, public=self.serve_public)
        return Response(data=_cache["schema"])
