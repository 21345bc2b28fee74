from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from licensing_portal.authentication import actor_for

from . import services
from .decorators import org_admin_required_for_post
from .errors import AccountError
from .forms import ApiKeyForm
from .models import Organization
from .selectors import api_keys_for, get_api_key_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    org: Organization | None = request.user.organization
    if org is None or org.kind == Organization.Kind.VENDOR:
        template = "smartaccounts/home_vendor.html"
    elif org.is_partner:
        template = "smartaccounts/home_partner.html"
    else:
        template = "smartaccounts/home_customer.html"
    return render(request, template, {"organization": org})


@org_admin_required_for_post
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    new_key = None
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            api_key, new_key = services.create_api_key(
                organization=request.user.organization, name=form.cleaned_data["name"], actor=actor
            )
        except AccountError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, f"API key “{api_key.name}” created. Copy it now.")
            form = ApiKeyForm()
    page = Paginator(api_keys_for(actor), 25).get_page(request.GET.get("page"))
    status = 400 if request.method == "POST" and new_key is None else 200
    return render(
        request,
        "smartaccounts/api_keys.html",
        {"form": form, "page": page, "new_key": new_key},
        status=status,
    )


@org_admin_required_for_post
@require_POST
def revoke_api_key(request: HttpRequest, key_id: str) -> HttpResponse:
    actor = actor_for(request)
    api_key = get_api_key_for(actor, key_id)
    services.revoke_api_key(api_key=api_key, actor=actor)
    messages.success(request, f"API key “{api_key.name}” revoked.")
    return redirect("smartaccounts:api_keys")


class InvitationView(auth_views.PasswordResetConfirmView):
    """The invitation link: an invited user sets a first password (Django's reset token)."""

    template_name = "smartaccounts/invitation.html"
    success_url = reverse_lazy("password_reset_complete")
    post_reset_login = False
