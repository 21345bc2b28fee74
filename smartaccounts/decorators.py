"""Policies for portal views, applied as decorators at the top of each view. Permission rules
are `access_*` functions (smartaccounts/access.py), asked by the views and the services."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
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
