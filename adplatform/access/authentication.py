"""DRF authentication and permissions for bearer API keys."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from .selectors import Principal, principal_for_key

ERROR_MISSING_KEY = "Authentication required: send 'Authorization: Bearer <key>'."
ERROR_INVALID_KEY = "Invalid or revoked API key."
ERROR_MISSING_SCOPE = "This key lacks the '{scope}' scope."
ERROR_ADVERTISER_TOKEN_REQUIRED = "This endpoint needs an advertiser token."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer" or len(parts[1]) > 200:
            raise exceptions.AuthenticationFailed(ERROR_INVALID_KEY)
        principal = principal_for_key(parts[1])
        if principal is None:
            raise exceptions.AuthenticationFailed(ERROR_INVALID_KEY)
        return principal, parts[1]

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def principal_of(request: Request) -> Principal:
    """The authenticated key behind a request (views run after the permission check)."""
    user = request.user
    if not isinstance(user, Principal):
        raise exceptions.NotAuthenticated(ERROR_MISSING_KEY)
    return user


class _Authenticated(permissions.BasePermission):
    message = ERROR_MISSING_KEY

    def has_permission(self, request: Request, view: Any) -> bool:
        principal_of(request)
        return True


def HasScope(scope: str) -> type[permissions.BasePermission]:  # noqa: N802 - reads like a class
    class _HasScope(_Authenticated):
        def has_permission(self, request: Request, view: Any) -> bool:
            if not principal_of(request).has_scope(scope):
                raise exceptions.PermissionDenied(ERROR_MISSING_SCOPE.format(scope=scope))
            return True

    _HasScope.__name__ = f"HasScope[{scope}]"
    return _HasScope


class IsAdvertiser(_Authenticated):
    def has_permission(self, request: Request, view: Any) -> bool:
        if principal_of(request).advertiser_id is None:
            raise exceptions.PermissionDenied(ERROR_ADVERTISER_TOKEN_REQUIRED)
        return True


AnyValidKey = _Authenticated
