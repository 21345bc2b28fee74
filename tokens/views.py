import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from licensing_portal.authentication import actor_for
from licensing_portal.sorting import Sorting
from smartaccounts.models import Product
from smartaccounts.selectors import can_manage_accounts, get_account_for

from . import services
from .errors import TokenError
from .forms import AssignForm, OfflineRequestForm, RenameForm, ServerForm
from .models import Server
from .selectors import (
    accounts_overview_for,
    current_token,
    get_server_for,
    held_lines,
    holdings,
    holds_subscription,
    server_counts_by_state,
    servers_of,
)


def _require_manager(request: HttpRequest) -> None:
    if not can_manage_accounts(actor_for(request)):
        raise PermissionDenied


# The customer picker's sortable columns (True: the first click sorts descending, largest
# counts first) and the ordering behind each; the name breaks ties so pages stay stable.
PICKER_SORTS = {"name": False, "applications": True, "servers": True, "care": True}
_PICKER_ORDERINGS = {
    "name": ("name", "pk"),
    "applications": ("application_count", "name", "pk"),
    "servers": ("server_count", "name", "pk"),
    "care": ("care_expiring_count", "name", "pk"),
}


@login_required
@require_safe
def account_picker(request: HttpRequest) -> HttpResponse:
    """A partner picks the customer whose Smart Account it works in."""
    actor = actor_for(request)
    if actor.organization is None or not actor.organization.is_partner:
        raise Http404
    query = request.GET.get("q", "").strip()
    sorting = Sorting(request, PICKER_SORTS, default="name")
    ordering = _PICKER_ORDERINGS[sorting.column]
    if sorting.descending:
        ordering = (f"-{ordering[0]}", *ordering[1:])
    accounts = accounts_overview_for(actor, timezone.now(), query).order_by(*ordering)
    page = Paginator(accounts, 25).get_page(request.GET.get("page"))
    template = "tokens/_picker_rows.html" if request.htmx else "tokens/account_picker.html"
    return render(
        request,
        template,
        {"page": page, "q": query, "sorting": sorting},
    )


@login_required
@require_http_methods(["GET", "POST"])
def servers(request: HttpRequest, account_id: str) -> HttpResponse:
    actor = actor_for(request)
    account = get_account_for(actor, account_id)
    form = ServerForm(request.POST or None)
    status = 200
    if request.method == "POST":
        _require_manager(request)
        if form.is_valid():
            try:
                server = services.create_server(account=account, actor=actor, **form.cleaned_data)
            except TokenError as exc:
                form.add_error(None, exc.detail)
            else:
                messages.success(
                    request,
                    f"Server “{server.name}” created. Assign capacity to it to get its "
                    "activation token.",
                )
                return redirect("tokens:server", server_id=server.pk)
        status = 400
    state = request.GET.get("state", "")
    listed = servers_of(account)
    if state in Server.State.values:
        listed = listed.filter(state=state)
    else:
        listed = listed.exclude(state=Server.State.DEACTIVATED)
    page = Paginator(listed, 25).get_page(request.GET.get("page"))
    for server in page:
        server.held = held_lines(server)
    counts = server_counts_by_state(account)
    return render(
        request,
        "tokens/servers.html",
        dict(
            account=account,
            page=page,
            form=form,
            state=state,
            state_filters=[(v, label, counts.get(v, 0)) for v, label in Server.State.choices],
            tab="servers",
        ),
        status=status,
    )


def _server_page(
    request: HttpRequest, server: Server, *, status: int = 200, **extra: object
) -> HttpResponse:
    now = timezone.now()
    context = dict(
        account=server.account,
        server=server,
        holdings=holdings(server, now),
        token=current_token(server, now) if server.is_pending else None,
        rename_form=RenameForm(initial={"name": server.name}),
        offline_allowed=server.state in (Server.State.PENDING, Server.State.OFFLINE),
        holds_subscription=holds_subscription(server),
        tab="servers",
        **{"offline_form": OfflineRequestForm(), **extra},
    )
    template = "tokens/_server_body.html" if request.htmx else "tokens/server.html"
    return render(request, template, context, status=status)


@login_required
@require_safe
def server_detail(request: HttpRequest, server_id: str) -> HttpResponse:
    return _server_page(request, get_server_for(actor_for(request), server_id))


@login_required
@require_POST
def assign(request: HttpRequest, server_id: str, product: str) -> HttpResponse:
    """Set what the server holds of one product. The page is rendered, not redirected to, so a
    freshly minted token can be shown once."""
    actor = actor_for(request)
    server = get_server_for(actor, server_id)
    _require_manager(request)
    product_obj = get_object_or_404(Product, code=product)
    form = AssignForm(request.POST)
    if not form.is_valid():
        return _server_page(
            request, server, status=400, errors={product_obj.code: form.errors["quantity"]}
        )
    try:
        result = services.assign_capacity(
            server=server, product=product_obj, quantity=form.cleaned_data["quantity"], actor=actor
        )
    except TokenError as exc:
        return _server_page(request, server, status=409, errors={product_obj.code: [exc.detail]})
    messages.success(
        request,
        f"{server.name} now holds {result.quantity} {product_obj.unit} of {product_obj.name}.",
    )
    return _server_page(request, result.server, new_token=result.token)


@login_required
@require_POST
def regenerate_token(request: HttpRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    server = get_server_for(actor, server_id)
    _require_manager(request)
    try:
        minted = services.mint_token(server=server, actor=actor)
    except TokenError as exc:
        messages.error(request, exc.detail)
        return redirect("tokens:server", server_id=server.pk)
    messages.success(request, "A new token is ready; the previous one no longer works.")
    return _server_page(request, server, new_token=minted)


@login_required
@require_POST
def rename(request: HttpRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    server = get_server_for(actor, server_id)
    _require_manager(request)
    form = RenameForm(request.POST)
    if form.is_valid():
        try:
            services.rename_server(server=server, name=form.cleaned_data["name"], actor=actor)
        except TokenError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, f"Renamed to “{server.name}”.")
    else:
        messages.error(request, "A server needs a name of at most 100 characters.")
    return redirect("tokens:server", server_id=server.pk)


@login_required
@require_http_methods(["GET", "POST"])
def deactivate(request: HttpRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    server = get_server_for(actor, server_id)
    _require_manager(request)
    if request.method == "POST":
        services.deactivate_server(server=server, actor=actor)
        messages.success(
            request, f"“{server.name}” is deactivated: its capacity is free to assign again."
        )
        return redirect("tokens:servers", account_id=server.account_id)
    return render(
        request,
        "tokens/deactivate_confirm.html",
        dict(account=server.account, server=server, holdings=holdings(server, timezone.now())),
    )


@login_required
@require_POST
def offline_activation(request: HttpRequest, server_id: str) -> HttpResponse:
    """Upload a request file, download the signed license file (perpetual capacity only)."""
    actor = actor_for(request)
    server = get_server_for(actor, server_id)
    _require_manager(request)
    form = OfflineRequestForm(request.POST, request.FILES)
    if not form.is_valid():
        return _server_page(request, server, status=400, offline_form=form)
    try:
        license_file = services.activate_offline(
            server=server, request=services.OfflineRequest(**form.cleaned_data), actor=actor
        )
    except TokenError as exc:
        form.add_error("request_file", exc.detail)
        status = 422 if exc.code == "subscription_requires_online" else 400
        return _server_page(request, server, status=status, offline_form=form)
    response = HttpResponse(json.dumps({"license": license_file}), content_type="application/json")
    filename = slugify(server.name) or "server"
    response["Content-Disposition"] = f'attachment; filename="license-{filename}.json"'
    return response
