"""How a portal page answers a refusal from a service: the one place a ``DomainError``
becomes a page's answer (its status comes from the error, ``STATUS_FOR_CODE``)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .errors import DomainError


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
    """
    status = exc.status
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
