"""Partner API keys as DRF authentication (`Authorization: Bearer clp_…`), and their OpenAPI
security scheme. The Actor behind a request is `actors.actor_for`."""

from typing import Any

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .models import ApiKey, Organization
from .selectors import authenticate_api_key
from .services import API_KEY_PREFIX


class ApiKeyPrincipal:
    """What `request.user` is when a partner system calls with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.organization: Organization = api_key.organization
        self.pk = None

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}…"


def bearer_token(request: HttpRequest) -> str | None:
    header: str = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


INVALID_KEY_DETAIL = "The API key is invalid or has been revoked."
WRONG_SCHEME_DETAIL = "Send the API key as `Authorization: Bearer <key>`."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """A request that presents a secret is judged on it: a wrong or revoked key is told so,
    not that no credentials were provided (which only a request without any is told)."""

    def authenticate(self, request: Any) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header: str = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.strip():
            return None
        token = bearer_token(request)
        if token is None:
            raise exceptions.AuthenticationFailed(WRONG_SCHEME_DETAIL)
        api_key = authenticate_api_key(token) if token.startswith(API_KEY_PREFIX) else None
        if api_key is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY_DETAIL)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "partnerApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A partner API key (`clp_…`), created by an organization admin.",
        }
