import sys

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from kernel.metrics import set_readiness_degraded
from kernel.middleware import wants_problem_json
from kernel.problems import DATABASE_RETRY_AFTER_SECONDS, is_database_unavailable, problem_response

from . import health
from .lost_sessions import lost_session_answer, session_state


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers one query; 503 problem+json otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return problem_response(request, 503, "service_unavailable", "The database is unreachable.")
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when this process may take traffic: the database answers and every migration is
    applied. 503 otherwise, naming the failing checks. Redis (when configured) and the outbox
    backlog only degrade the service: their failures are named under "degraded" in a 200
    answer and in the licensing_readiness_degraded gauge."""
    checks = health.readiness()
    failed = [name for name, result in checks.items() if result not in ("ok", "skipped")]
    degraded = [name for name in failed if name in health.DEGRADING]
    failing = [name for name in failed if name not in health.DEGRADING]
    for name in health.DEGRADING:
        set_readiness_degraded(name, name in degraded)
    if failing:
        return problem_response(
            request,
            503,
            "service_unavailable",
            f"Not ready: {', '.join(failing)}.",
            failing=failing,
            degraded=degraded,
            checks=checks,
        )
    status = "degraded" if degraded else "ok"
    return JsonResponse({"status": status, "checks": checks, "degraded": degraded})


def _wants_problem(request: HttpRequest) -> bool:
    return wants_problem_json(request.path)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400 for a request Django refused before any view (a Host not served here, say)."""
    if _wants_problem(request):
        return problem_response(request, 400, "validation_error", "The request is not valid.")
    return HttpResponse("Bad request.", status=400, content_type="text/plain")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A page's form sent with a token the session no longer has: logging in (here or in
    another tab) rotates it, so the page was made for a session that ended or changed."""
    if _wants_problem(request):
        return problem_response(
            request,
            403,
            "permission_denied",
            "CSRF verification failed: send the portal's CSRF token with session calls.",
        )
    return lost_session_answer(request, session_state(request), 403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_problem(request):
        return problem_response(request, 404, "not_found", "Not found.")
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception: an unreachable database is a 503.
    if is_database_unavailable(sys.exc_info()[1]):
        return service_unavailable(request)
    if _wants_problem(request):
        return problem_response(request, 500, "server_error", "Something went wrong on our side.")
    return render(request, "500.html", status=500)


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After while the database cannot be reached. The page is rendered without
    the request, so no context processor (none may query) and nothing else touches the
    database."""
    retry_after = str(DATABASE_RETRY_AFTER_SECONDS)
    if _wants_problem(request):
        response: HttpResponse = problem_response(
            request, 503, "service_unavailable", "The service is briefly unavailable."
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = retry_after
    return response


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_problem(request):
        return problem_response(request, 403, "permission_denied", "You may not do this.")
    return render(request, "403.html", status=403)
