"""How a portal page answers a refusal from a service: the one place a ``DomainError``
becomes a page's answer (its status comes from the error, ``STATUS_FOR_CODE``)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .errors import DomainError


def page_status(exc: DomainError) -> int:
    """The status a page answers `exc` with: the code's own, except 401 (see `refusal`)."""
    return 400 if exc.status == 401 else exc.status


def refusal(
    request: HttpRequest,
    exc: DomainError,
    form: forms.Form | None = None,
    *,
    field: str | None = None,
) -> int:
    """Show `exc` on the page and return the status to answer with.

    With a form: each message beside the field the error names; when it names none of the
    form's fields, its detail beside `field` (above the form by default). Without a form: a
    message at the top of the page. A permission refusal (403) is not shown: it raises
    ``PermissionDenied``, answered with the 403 page.

    A page's caller is already signed in, so a credential code (401: a token pasted into a
    form or carried in an uploaded file) refers to what was submitted, not to who submits it:
    the page answers 400, the submission is invalid (401 would ask the browser to log in).
    """
    status = page_status(exc)
    if status == 403:
        raise PermissionDenied(exc.detail) from exc
    if form is None:
        messages.error(request, exc.detail)
        return status
    named = {name: errors for name, errors in exc.errors.items() if name in form.fields}
    for name, errors in named.items():
        for error in errors:
            form.add_error(name, error)
    if not named:
        form.add_error(field, exc.detail)
    return status
