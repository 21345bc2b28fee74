"""Logging in and resetting a password, with the limits that keep guessing and mail bombing
out (SECURITY.md S15, S26, S27)."""

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from kernel.throttling import login_spraying, reset_by_address, reset_by_email

from .actors import client_address
from .forms import EmailAuthenticationForm, InvitablePasswordResetForm


def _too_many(request: HttpRequest, template: str, retry_after: int) -> HttpResponse:
    response = render(request, template, {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


class LoginView(auth_views.LoginView):
    """Django's login; an address that has failed with too many different e-mails (password
    spraying) is paused, on top of django-axes' lockout per e-mail and address."""

    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        retry_after = login_spraying.retry_after(client_address(request))
        if retry_after is not None:
            return _too_many(request, "registration/locked_out.html", retry_after)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        username = str(self.request.POST.get("username", ""))[:254]
        if username:
            login_spraying.record_distinct(client_address(self.request), username)
        return super().form_invalid(form)


class PasswordResetView(auth_views.PasswordResetView):
    """Throttled per client address (429 past the limit) and per e-mail asked for (quietly:
    the answer is the usual one, so nothing tells whether the address has an account)."""

    form_class = InvitablePasswordResetForm

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        address = client_address(request)
        retry_after = reset_by_address.retry_after(address)
        if retry_after is not None:
            return _too_many(request, "registration/password_reset_limited.html", retry_after)
        reset_by_address.record_failure(address)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        email = form.cleaned_data["email"].lower()
        if reset_by_email.retry_after(email) is not None:
            return super(auth_views.PasswordResetView, self).form_valid(form)  # no e-mail
        reset_by_email.record_failure(email)
        return super().form_valid(form)
