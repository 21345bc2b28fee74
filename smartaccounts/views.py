from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from kernel.exports import csv_export
from kernel.pages import refusal
from kernel.sorting import Sorting

from . import members, renewals, services
from .access import access_api_keys, access_org_admin
from .actors import PortalRequest, actor_for
from .errors import AccountError
from .forms import ApiKeyForm, InviteForm, RoleForm
from .models import License, Organization, Product, User
from .selectors import (
    POOL_SORTS,
    accounts_for,
    api_keys_for,
    arrange_pool,
    get_account_for,
    get_license_for,
    get_rw_api_key_for,
    get_rw_invitation_for,
    get_rw_member_for,
    invitations_for,
    license_pool,
    licenses_by_product,
    licenses_for_export,
    members_for,
    partners_of,
)


@login_required
@require_safe
def home(request: PortalRequest) -> HttpResponse:
    """Each role lands where it works: a customer in its Smart Account, a partner on the
    customer picker, vendor staff on the back office."""
    org: Organization | None = request.user.organization
    if org is None or org.kind == Organization.Kind.VENDOR:
        return render(request, "smartaccounts/home_vendor.html", {"organization": org})
    if org.is_partner:
        return redirect("tokens:picker")
    account = accounts_for(actor_for(request)).first()
    if account is None:
        return render(
            request,
            "smartaccounts/home_customer.html",
            {"organization": org, "partners": partners_of(org)},
        )
    return redirect("smartaccounts:account", account_id=account.pk)


@login_required
@require_safe
def account_licenses(request: HttpRequest, account_id: str) -> HttpResponse:
    actor = actor_for(request)
    account = get_account_for(actor, account_id)
    sorting = Sorting(request, POOL_SORTS, default="name")
    care = request.GET.get("care", "")
    if care not in License.CareStatus.values:
        care = ""
    pool = arrange_pool(license_pool(account, timezone.now()), sort=sorting.value, care=care)
    page = Paginator(pool, 25).get_page(request.GET.get("page"))
    expand = request.GET.get("expand", "")
    expanded = {}
    if expand:
        rows = [row for row in page if row.product.code == expand]
        if rows:
            expanded = licenses_by_product(account, [rows[0].product.pk])
    for row in page:
        row.licenses = expanded.get(row.product.pk, [])
    org = actor.organization
    is_customer = org is not None and org.kind == Organization.Kind.CUSTOMER
    kept = request.GET.copy()
    kept.pop("expand", None)
    return render(
        request,
        "smartaccounts/account_licenses.html",
        {
            "account": account,
            "page": page,
            "expand": expand,
            "tab": "licenses",
            "sorting": sorting,
            "care": care,
            "care_filters": _care_filters(request, care),
            "kept_query": kept.urlencode(),
            "partners": partners_of(account.organization) if is_customer else [],
            **_ask_window(),
        },
    )


def _care_filters(request: HttpRequest, current: str) -> list[tuple[str, str, bool]]:
    """(label, url, chosen) of the care status filter links; each keeps the sort."""
    links = []
    for value, label in [("", "All"), *License.CareStatus.choices]:
        params = request.GET.copy()
        for name in ("page", "expand", "care"):
            params.pop(name, None)
        if value:
            params["care"] = value
        links.append((label, f"?{params.urlencode()}", value == current))
    return links


@login_required
@require_safe
def account_licenses_csv(
    request: HttpRequest, account_id: str
) -> HttpResponse | StreamingHttpResponse:
    """Every license of the account, one flat row each (times in UTC, ISO 8601); at most
    EXPORT_MAX_ROWS of them (kernel/exports.py)."""
    account = get_account_for(actor_for(request), account_id)
    now = timezone.now()
    licenses = licenses_for_export(account)
    return csv_export(
        request,
        f"licenses-{slugify(account.name) or 'account'}.csv",
        [
            "application",
            "code",
            "kind",
            "quantity",
            "state",
            "starts_at",
            "term_ends_at",
            "care_ends_at",
            "care_status",
            "order_reference",
        ],
        (
            (
                lic.product.name,
                lic.product.code,
                lic.kind,
                lic.quantity,
                lic.state,
                _utc(lic.starts_at),
                _utc(lic.ends_at),
                _utc(lic.care_ends_at),
                lic.care_status(now),
                lic.source,
            )
            for lic in licenses.iterator(chunk_size=500)
        ),
        counted=licenses,
        back=reverse("smartaccounts:account", args=[account.pk]),
    )


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat() if moment else ""


@login_required
@require_safe
def account_license_detail(request: HttpRequest, account_id: str, product: str) -> HttpResponse:
    """The licenses behind one application row (loaded when the row is expanded)."""
    account = get_account_for(actor_for(request), account_id)
    product_obj = get_object_or_404(Product, code=product)
    licenses = licenses_by_product(account, [product_obj.pk])[product_obj.pk]
    return render(
        request,
        "smartaccounts/_license_detail.html",
        {"licenses": licenses, "product": product_obj, **_ask_window()},
    )


def _ask_window() -> dict[str, datetime]:
    """Between `now` and `ask_until` a license's end lets its customer ask for a renewal."""
    now = timezone.now()
    return {"now": now, "ask_until": now + renewals.RENEWAL_HORIZON}


@login_required
@require_POST
def license_auto_renew(request: HttpRequest, license_id: str) -> HttpResponse:
    """A partner turns a subscription's automatic renewal on or off."""
    actor = actor_for(request)
    lic = get_license_for(actor, license_id)
    enabled = request.POST.get("auto_renew") == "on"
    try:
        renewals.set_auto_renew(license=lic, enabled=enabled, actor=actor)
    except AccountError as exc:
        refusal(request, exc)
    else:
        state = "on" if enabled else "off"
        messages.success(request, f"Automatic renewal of {lic.product.name} is {state}.")
    url = reverse("smartaccounts:account", args=[lic.account_id])
    return redirect(f"{url}?expand={lic.product.code}")


@login_required
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    if actor.organization is None:
        raise Http404
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        access_org_admin(actor, actor.organization)
        if form.is_valid():
            try:
                email = members.invite_member(actor=actor, **form.cleaned_data)
            except AccountError as exc:
                status = refusal(request, exc, form)
            else:
                # The same answer whether or not the address has an account elsewhere (S27).
                messages.success(request, f"Invitation sent to {email}.")
                return redirect("smartaccounts:team")
        else:
            status = 400
    # The people who joined, and apart the invitations waiting: an address with an account
    # elsewhere is listed there like a new one, as nobody joins in either case (S27).
    page = Paginator(members_for(actor), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "smartaccounts/team.html",
        {
            "form": form,
            "page": page,
            "invitations": invitations_for(actor),
            "roles": User.Role.choices,
        },
        status=status,
    )


@login_required
@require_POST
def team_role(request: HttpRequest, user_id: str) -> HttpResponse:
    actor = actor_for(request)
    user = get_rw_member_for(actor, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
    else:
        try:
            user = members.change_role(user=user, role=form.cleaned_data["role"], actor=actor)
        except AccountError as exc:
            refusal(request, exc)
        else:
            messages.success(request, f"{user.email} is now {user.get_role_display().lower()}.")
    return redirect("smartaccounts:team")


@login_required
@require_POST
def team_deactivate(request: HttpRequest, user_id: str) -> HttpResponse:
    actor = actor_for(request)
    user = get_rw_member_for(actor, user_id)
    try:
        members.deactivate_user(user=user, actor=actor)
    except AccountError as exc:
        refusal(request, exc)
    else:
        messages.success(request, f"{user.email} can no longer log in.")
    return redirect("smartaccounts:team")


@login_required
@require_POST
def team_invitation_resend(request: HttpRequest) -> HttpResponse:
    """Invite the address again, with its role: the invitation form's own path, so that it
    answers alike for an address with an account elsewhere (that person is told again)."""
    actor = actor_for(request)
    invitation = get_rw_invitation_for(actor, request.POST.get("invitation"))
    try:
        email = members.invite_member(actor=actor, email=invitation.email, role=invitation.role)
    except AccountError as exc:
        refusal(request, exc)
    else:
        messages.success(request, f"Invitation sent to {email}.")
    return redirect("smartaccounts:team")


@login_required
@require_POST
def team_invitation_cancel(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    invitation = get_rw_invitation_for(actor, request.POST.get("invitation"))
    try:
        cancelled = members.cancel_invitation(actor=actor, email=invitation.email)
    except AccountError as exc:
        refusal(request, exc)
    else:
        if cancelled:
            messages.success(request, f"The invitation of {invitation.email} is withdrawn.")
        else:
            messages.error(request, f"{invitation.email} has joined the team meanwhile.")
    return redirect("smartaccounts:team")


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: PortalRequest) -> HttpResponse:
    """Anyone in the organization may look; only its admins create keys."""
    actor = actor_for(request)
    if actor.organization is None:
        raise PermissionDenied
    if request.method == "POST":
        access_api_keys(actor, actor.organization)
    new_key = None
    form = ApiKeyForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            api_key, new_key = services.create_api_key(
                organization=actor.organization, name=form.cleaned_data["name"], actor=actor
            )
        except AccountError as exc:
            status = refusal(request, exc, form)
        else:
            messages.success(request, f"API key “{api_key.name}” created. Copy it now.")
            form = ApiKeyForm()
    page = Paginator(api_keys_for(actor), 25).get_page(request.GET.get("page"))
    if request.method == "POST" and new_key is None and status == 200:
        status = 400  # the form's own errors
    response = render(
        request,
        "smartaccounts/api_keys.html",
        {"form": form, "page": page, "new_key": new_key},
        status=status,
    )
    if new_key is not None:
        response["Cache-Control"] = "no-store"  # the key is shown this once
    return response


@login_required
@require_POST
def revoke_api_key(request: HttpRequest, key_id: str) -> HttpResponse:
    actor = actor_for(request)
    api_key = get_rw_api_key_for(actor, key_id)
    services.revoke_api_key(api_key=api_key, actor=actor)
    messages.success(request, f"API key “{api_key.name}” revoked.")
    return redirect("smartaccounts:api_keys")


class InvitationView(auth_views.PasswordResetConfirmView):
    """The invitation link: an invited user sets a first password (Django's reset token) and
    lands in the portal, signed in. The link works once: setting the password retires it."""

    template_name = "smartaccounts/invitation.html"
    success_url = reverse_lazy("smartaccounts:home")
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"

    def form_valid(self, form: "SetPasswordForm[User]") -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, f"Welcome! Your password is set for {form.user.email}.")
        return response
