"""The WSGI entry point: one gunicorn serves two Django handlers.

The machine paths (settings.MACHINE_PATHS, matched by kernel.middleware.is_machine_path: the
device endpoints AppSuite servers call and the probes) are answered by a lean handler whose
middleware is MACHINE_MIDDLEWARE: request ids, the security headers, the edge refusals and
caching default, and nothing of the portal's (sessions, CSRF, login, messages, htmx, CSP, login
lockouts, static files). Every other path goes through the full MIDDLEWARE. Both share the
settings, the URLs and the error pages, so a path answers the same whichever handler serves it."""

import os
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licensing_portal.settings.base")

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import HttpRequest  # noqa: E402
from django.urls import ResolverMatch  # noqa: E402

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MachineHandler(WSGIHandler):
    """A WSGI handler built from MACHINE_MIDDLEWARE instead of MIDDLEWARE.

    Its paths are few and fixed, and a sync's share of resolving one through the whole URLconf
    is not small: a path that resolves with no arguments is resolved once and remembered."""

    RESOLVED_MAX = 64  # far more than the machine paths; arbitrary paths never fill it

    def __init__(self) -> None:
        self.resolved_paths: dict[str, ResolverMatch] = {}
        super().__init__()

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        match = self.resolved_paths.get(request.path_info)
        if match is not None and not hasattr(request, "urlconf"):
            request.resolver_match = match
            return match
        match = super().resolve_request(request)
        fixed = not match.args and not match.kwargs and not hasattr(request, "urlconf")
        if fixed and len(self.resolved_paths) < self.RESOLVED_MAX:
            self.resolved_paths[request.path_info] = match
        return match

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE; it is swapped only while this
        # handler is built, once, at start-up, before any request is served.
        portal_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.MACHINE_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = portal_middleware


def build_application() -> WSGIApp:
    django.setup(set_prefix=False)
    from kernel.middleware import is_machine_path  # needs the apps loaded

    portal = WSGIHandler()
    machine = MachineHandler()

    def dispatch(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        handler = machine if is_machine_path(environ.get("PATH_INFO", "")) else portal
        return handler(environ, start_response)

    return dispatch


application = build_application()
