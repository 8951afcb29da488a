"""GET /track/impression/<token> (beacon) and GET /track/click/<token> (redirect): public,
unauthenticated (the signed token is the credential), one service call each."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from .. import services


class TokenExpired(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_code = "token_expired"
    default_detail = services.ERROR_TOKEN_EXPIRED


def _token_error(exc: services.TokenError) -> exceptions.APIException:
    if isinstance(exc, services.TokenExpiredError):
        return TokenExpired()
    return exceptions.ValidationError({"token": [services.ERROR_TOKEN_INVALID]})


def _client(request: Request) -> services.ClientRequest:
    """The headers invalid-traffic filtering looks at (ADR 0032)."""
    headers = {name: request.headers.get(name, "") for name in ("Sec-Purpose", "Purpose", "X-Purpose", "X-Moz")}
    return services.ClientRequest(
        user_agent=request.headers.get("User-Agent", ""),
        headers={k.lower(): v for k, v in headers.items() if v},
    )


_TOKEN_ERRORS = {
    400: OpenApiResponse(description="Malformed or tampered token (nothing recorded)"),
    410: OpenApiResponse(description="Expired token (nothing recorded)"),
}


class TrackImpressionApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    # no HEAD: Django would answer it with get(), and a link checker would record the event
    http_method_names = ["get", "options"]

    @extend_schema(
        responses={
            204: OpenApiResponse(description="Recorded (or already recorded, or filtered as invalid traffic)"),
            **_TOKEN_ERRORS,
        }
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        try:
            services.impression_record(token=token, client=_client(request))
        except services.TokenError as exc:
            raise _token_error(exc) from None
        response = HttpResponse(status=status.HTTP_204_NO_CONTENT)
        response["Cache-Control"] = "no-store"
        return response


class TrackClickApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    http_method_names = ["get", "options"]

    @extend_schema(
        responses={
            302: OpenApiResponse(description="Recorded (unless invalid traffic); redirect to landing URL"),
            **_TOKEN_ERRORS,
        }
    )
    def get(self, request: Request, token: str) -> HttpResponse:
        try:
            outcome = services.click_record(token=token, client=_client(request))
        except services.TokenError as exc:
            raise _token_error(exc) from None
        response = HttpResponseRedirect(outcome.landing_url)
        response["Cache-Control"] = "no-store"
        # the landing page learns the shop sent the shopper, not the token
        response["Referrer-Policy"] = "origin"
        return response
