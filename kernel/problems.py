"""RFC 9457 problem details for every API error, with the contract's stable `code`."""

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from .errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"
# How long a caller is asked to wait when the database is unavailable (Retry-After).
DATABASE_RETRY_AFTER_SECONDS = 5


def is_database_unavailable(exc: BaseException | None) -> bool:
    """The database went away or cannot be reached (restart, failover, a closed port). Django
    reconnects on the next request (CONN_HEALTH_CHECKS); meanwhile callers are told to retry,
    and nothing was half written: the transaction died with the connection."""
    return isinstance(exc, OperationalError | InterfaceError)


def problem(
    status: int, code: str, detail: str, *, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return body


def flatten_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error tree as {"lines.0.quantity": ["..."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                name = prefix or "non_field_errors"
            flat.update(flatten_errors(value, name))
    elif isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            flat.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in data)
        else:
            for index, item in enumerate(data):
                if item:
                    flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat.setdefault(prefix or "non_field_errors", []).append(str(data))
    return flat


def _first_message(errors: dict[str, list[str]]) -> str:
    for field, messages in errors.items():
        if messages:
            return f"{field}: {messages[0]}" if field != "non_field_errors" else messages[0]
    return "The request is not valid."


def _bearer_challenge(code: str, context: dict[str, Any]) -> str:
    """RFC 6750 3: a secret presented and refused (unknown, revoked, an activation token that
    is not one) is `invalid_token`; a request that presented none gets the bare challenge."""
    request = context.get("request")
    presented = request is not None and "HTTP_AUTHORIZATION" in request.META
    if code != "not_authenticated" or presented:
        return 'Bearer realm="api", error="invalid_token"'
    return 'Bearer realm="api"'


def problem_for(
    exc: Exception, context: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The problem document and headers an exception is answered with, None for one that is
    not an expected refusal (a bug: it stays a 500). `context` may hold the request."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        status = exc.status
        body = problem(status, exc.code, exc.detail, **exc.extra)
        if exc.errors:
            body["errors"] = exc.errors
        if status == 401:
            headers["WWW-Authenticate"] = _bearer_challenge(exc.code, context)
    elif isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = problem(400, "validation_error", _first_message(errors), errors=errors)
    elif isinstance(exc, Http404 | exceptions.NotFound):
        body = problem(404, "not_found", "Not found.")
    elif isinstance(exc, PermissionDenied | exceptions.PermissionDenied):
        detail = getattr(exc, "detail", None) or "You may not perform this action."
        body = problem(403, "permission_denied", str(detail))
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        body = problem(401, "not_authenticated", str(exc.detail))
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    elif isinstance(exc, exceptions.Throttled):
        body = problem(429, "rate_limited", str(exc.detail))
        wait: float | None = exc.wait  # type: ignore[attr-defined]  # set in __init__; not in the stubs
        if wait:
            headers["Retry-After"] = str(int(wait) + 1)
    elif isinstance(exc, exceptions.MethodNotAllowed):
        body = problem(405, "method_not_allowed", str(exc.detail))
    elif isinstance(exc, exceptions.NotAcceptable):
        body = problem(406, "not_acceptable", str(exc.detail))
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        body = problem(415, "unsupported_media_type", str(exc.detail))
    elif isinstance(exc, exceptions.ParseError):
        body = problem(400, "validation_error", str(exc.detail))
    elif is_database_unavailable(exc):
        body = problem(503, "service_unavailable", "The service is briefly unavailable.")
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    elif isinstance(exc, exceptions.APIException):
        body = problem(exc.status_code, "server_error", str(exc.detail))
    else:
        return None
    return body, headers


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler: every refusal as problem+json."""
    found = problem_for(exc, context)
    if found is None:
        return None
    body, headers = found
    response = Response(body, status=body["status"], headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_response(
    request: HttpRequest, status: int, code: str, detail: str, **extra: Any
) -> JsonResponse:
    return JsonResponse(
        problem(status, code, detail, **extra), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
