"""Policies for portal views, applied as decorators at the top of each view."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse

from .actors import PortalRequest

View = Callable[..., HttpResponse]


def partner_required(view: View) -> View:
    """Distributors and resellers only; anyone else gets a 404, as if the page did not exist."""

    @login_required
    @wraps(view)
    def wrapper(request: PortalRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        org = request.user.organization
        if org is None or not org.is_partner:
            raise Http404("Partners only.")
        return view(request, *args, **kwargs)

    return wrapper


def org_admin_required_for_post(view: View) -> View:
    """Anyone in the organization may look; only its admins may change (403 otherwise)."""

    @login_required
    @wraps(view)
    def wrapper(request: PortalRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.organization is None:
            raise PermissionDenied
        if request.method == "POST" and not request.user.is_org_admin():
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def writer_required(view: View) -> View:
    """Members and admins; viewers read only (403)."""

    @login_required
    @wraps(view)
    def wrapper(request: PortalRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.can_write():
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
