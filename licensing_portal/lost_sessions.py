"""A session that ended or changed while a page was open is said as such, never as a refusal.

A person logs out in another tab (or logs in again there, perhaps as someone else) and then
presses *Save* on a page loaded before. What comes back is not "your role may not": it is
"your session ended (or changed); log in again", with a link back to the page they were on.

Three ways the stale page's request arrives:

- it fails the CSRF check (logging in rotates the token): ``lost_session_answer`` from the
  CSRF failure view;
- it passes the CSRF check (logging out keeps the token) but nobody is logged in any more:
  ``login_required`` redirects to the login page, which ``LostSessionMiddleware`` turns into a
  401 for htmx (htmx would otherwise follow the redirect and swap the login page into the
  page) and, for a form, into a login page whose ``next`` is the page the form was on (not
  the address the form posts to, which answers POST only);
- an htmx request names the user the page was made for (``X-Portal-User``, set on ``<body>``
  by base.html) and someone else is logged in now: 403, the session changed.

htmx answers carry ``X-Session: ended|changed`` and ``X-Session-Login`` (the login address
with ``next``); portal.js shows the body's sentence with a link to log in again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

State = Literal["ended", "changed"]

USER_HEADER = "X-Portal-User"
SENTENCES: dict[State, str] = {
    "ended": (
        "Your session ended: you logged out (perhaps in another tab) or it expired. "
        "Nothing was changed. Log in again to continue."
    ),
    "changed": (
        "Your session changed: you logged in again in another tab or window, perhaps as "
        "someone else. Nothing was changed. Log in again, or reload the page to continue as "
        "the person now logged in."
    ),
}


def _same_site_path(request: HttpRequest, url: str | None) -> str | None:
    """`url`'s path and query when it points at this site, else None."""
    if not url or not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def page_of(request: HttpRequest) -> str:
    """The page the request was sent from: htmx names it, a form's browser sends a Referer;
    the requested address for a plain GET; the home page when nothing says."""
    for candidate in (request.headers.get("HX-Current-URL"), request.headers.get("Referer")):
        path = _same_site_path(request, candidate)
        if path:
            return path
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    return "/"


def login_again_url(request: HttpRequest) -> str:
    query = urlencode({"next": page_of(request)}, safe="/")
    return f"{resolve_url(settings.LOGIN_URL)}?{query}"


def session_state(request: HttpRequest) -> State:
    user = getattr(request, "user", None)
    return "changed" if user is not None and user.is_authenticated else "ended"


def lost_session_answer(request: HttpRequest, state: State, status: int) -> HttpResponse:
    """The answer to a request from a page whose session ended or changed."""
    login_url = login_again_url(request)
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(SENTENCES[state], status=status, content_type="text/plain")
        response["X-Session"] = state
        response["X-Session-Login"] = login_url
        return response
    return render(
        request,
        "403_csrf.html",
        {"session_state": state, "sentence": SENTENCES[state], "login_again_url": login_url},
        status=status,
    )


def _is_login_redirect(response: HttpResponse) -> bool:
    if not isinstance(response, HttpResponseRedirect):
        return False
    return urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)


class LostSessionMiddleware:
    """See the module's docstring. After AuthenticationMiddleware and MessageMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        htmx = request.headers.get("HX-Request") == "true"
        page_user = request.headers.get(USER_HEADER)
        if htmx and page_user:
            user = request.user
            if not user.is_authenticated:
                return lost_session_answer(request, "ended", 401)
            if str(user.pk) != page_user:
                return lost_session_answer(request, "changed", 403)
        # Who was logged in when the request came (logging out also ends with a redirect to
        # the login page, and is no lost session).
        was_anonymous = not request.user.is_authenticated
        response = self.get_response(request)
        if not was_anonymous or not _is_login_redirect(response):
            return response
        if htmx:
            return lost_session_answer(request, "ended", 401)
        if request.method not in ("GET", "HEAD"):
            # The form's own address answers POST only: come back to the page it was on.
            messages.warning(request, SENTENCES["ended"])
            return HttpResponseRedirect(login_again_url(request))
        return response
