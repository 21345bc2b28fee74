"""What every response of the project shares at the edge: a request id, private caching by
default, problem+json for machine paths, and refusals of input no view should ever see."""

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.module_loading import import_string

from .logs import redact
from .problems import PROBLEM_CONTENT_TYPE, problem_response

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")

Handler = Callable[[HttpRequest], HttpResponse]


def is_under(path: str, prefix: str) -> bool:
    """The path is the prefix or lies below it: "/api/v1/sync/x" is under "/api/v1/sync",
    "/api/v1/syncx" is not."""
    return path == prefix or path.startswith(prefix + "/")


def is_machine_path(path: str) -> bool:
    """The device endpoints and the probes (settings.MACHINE_PATHS): served by the lean handler
    (licensing_portal/wsgi.py), with MACHINE_MIDDLEWARE only."""
    return any(is_under(path, prefix) for prefix in settings.MACHINE_PATHS)


def wants_problem_json(path: str) -> bool:
    """Paths whose callers are programs: the whole API and the machine paths. Their errors are
    problem+json, never an HTML page."""
    return is_under(path, "/api") or is_machine_path(path)


class RequestIdMiddleware:
    """Every response carries X-Request-ID, a fresh one for each request: two requests never
    share an id, whatever a client sends. Only with TRUST_PROXY_REQUEST_ID (the proxy in front
    sets the header on every request, overwriting the client's) is the incoming value taken.
    Otherwise a well-formed incoming value is kept apart as ``client_request_id`` for the
    request's log line. The logs carry the id too (RequestIdFilter)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        safe = bool(_SAFE_REQUEST_ID.match(incoming))
        trusted = safe and settings.TRUST_PROXY_REQUEST_ID
        request_id = incoming if trusted else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Something that could break a log line is not kept at all.
        client_value = incoming if safe and not trusted else None
        request.client_request_id = client_value  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class EdgeMiddleware:
    """Refuses what no view should see and keeps shared caches out.

    - A NUL byte in the path or query string is refused with 400 (databases refuse it, and no
      identifier or search holds one).
    - An API body over API_MAX_BODY_BYTES is refused with 413 ``payload_too_large`` before it
      is read.
    - A response that says nothing about caching is ``private, no-store``: portal pages, CSV
      exports and API answers belong to one user. Answers that may be shared (the public keys,
      static files) say so themselves.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._refuse(request)
        response = refusal or self.get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "private, no-store"
        return response

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            detail = "The request's path or query holds a NUL character."
            if wants_problem_json(request.path):
                return problem_response(request, 400, "validation_error", detail)
            return HttpResponseBadRequest(detail, content_type="text/plain")
        if wants_problem_json(request.path):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                return problem_response(
                    request,
                    413,
                    "payload_too_large",
                    f"The body is larger than the limit of {settings.API_MAX_BODY_BYTES} bytes.",
                    limit=settings.API_MAX_BODY_BYTES,
                )
        return None


request_logger = logging.getLogger("licensing.request")


@cache
def _organization_of() -> Callable[[HttpRequest], str | None]:
    organization_of: Callable[[HttpRequest], str | None] = import_string(
        settings.REQUEST_LOG_ORGANIZATION
    )
    return organization_of


def _outcome(response: HttpResponse) -> str:
    """The problem's code for an error answered as problem+json, else the status class."""
    if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
        try:
            return str(json.loads(response.content).get("code", "error"))
        except (ValueError, AttributeError):
            return "error"
    if response.status_code == 503:
        return "service_unavailable"  # the portal's page while the database is unreachable
    if response.status_code >= 500:
        return "server_error"
    if response.status_code >= 400:
        return "client_error"
    return "ok"


class RequestLogMiddleware:
    """One log line per request: its id (from the log filter), organization when the request
    was authenticated as one, method, path (capabilities redacted; no query string, no
    headers, no body), status, duration and outcome. Never a credential: none is read here."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        if not request_logger.isEnabledFor(logging.INFO):
            return response  # nothing to build when the line would be dropped
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        path = redact(request.path)
        request_logger.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "organization": _organization_of()(request),
                "client_request_id": getattr(request, "client_request_id", None),
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "outcome": _outcome(response),
            },
        )
        return response
