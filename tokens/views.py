import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms.utils import ErrorList
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from kernel.exports import csv_export
from kernel.keyset import Key, portal_page
from kernel.pages import refusal
from kernel.sorting import Sorting
from smartaccounts.access import access_manage_accounts
from smartaccounts.actors import PortalRequest, actor_for
from smartaccounts.models import Product, SmartAccount
from smartaccounts.selectors import (
    filter_by_reseller,
    get_account_for,
    resellers_of_distributor,
    with_resellers,
)

from . import exchange, services
from .charts import UsageSeries, usage_chart_svg
from .errors import TokenError
from .forms import AssignForm, OfflineRequestForm, RenameForm, ServerForm
from .models import Server
from .qrcodes import token_qr_svg
from .selectors import (
    SERVER_ORDERINGS,
    HeldLine,
    Holding,
    OfflineFile,
    OverUse,
    bounded_holdings,
    current_token,
    filter_servers,
    get_rw_server_for,
    get_server_for,
    held_lines,
    holdings,
    holds_subscription,
    last_offline_file,
    over_use_of,
    overview_counts_of,
    picker_accounts_for,
    same_machine_as,
    server_counts_by_state,
    servers_of,
    usage_series_of,
    with_overview_counts,
)

# The customer picker's sortable columns (True: the first click sorts descending, largest
# counts first) and the seek key behind each; the name, then the pk, break ties so pages stay
# stable.
PICKER_SORTS = {"name": False, "applications": True, "servers": True, "care": True}
_PICKER_KEYS = {
    "name": ("name", "pk"),
    "applications": ("application_count", "name", "pk"),
    "servers": ("server_count", "name", "pk"),
    "care": ("care_expiring_count", "name", "pk"),
}
PICKER_PAGE_SIZE = 25


@login_required
@require_safe
def account_picker(request: PortalRequest) -> HttpResponse:
    """A partner picks the customer whose Smart Account it works in."""
    actor = actor_for(request)
    if actor.organization is None or not actor.organization.is_partner:
        raise Http404
    query = request.GET.get("q", "").strip()
    sorting = Sorting(request, PICKER_SORTS, default="name")
    columns = _PICKER_KEYS[sorting.column]
    keys = (Key(columns[0], descending=sorting.descending), *map(Key, columns[1:]))
    now = timezone.now()
    # A distributor sees its resellers' customers: which reseller serves each, and a filter.
    resellers = resellers_of_distributor(actor)
    accounts, reseller = filter_by_reseller(
        picker_accounts_for(actor, query), resellers, request.GET.get("reseller", "")
    )

    def named(rows: list[SmartAccount]) -> list[SmartAccount]:
        return with_resellers(rows, resellers) if resellers else rows

    if sorting.column == "name":
        # Seek through the bare accounts; the counts are computed for the page's rows only.
        page = portal_page(
            request,
            accounts,
            keys,
            size=PICKER_PAGE_SIZE,
            tag=f"picker:{sorting.value}",
            load=lambda rows: named(overview_counts_of(rows, now)),
        )
    else:
        # Sorting by a count needs every account's count; the seek keeps the page's cost flat.
        page = portal_page(
            request,
            with_overview_counts(accounts, now),
            keys,
            size=PICKER_PAGE_SIZE,
            tag=f"picker:{sorting.value}",
            count_queryset=accounts,
            load=named,
        )
    template = "tokens/_picker_rows.html" if request.htmx else "tokens/account_picker.html"
    return render(
        request,
        template,
        {
            "page": page,
            "q": query,
            "sorting": sorting,
            "resellers": resellers,
            "reseller": reseller,
        },
    )


SORT_COLUMNS = {"name": False, "state": False, "last_sync": True}


def _listed_servers(request: HttpRequest, account: SmartAccount) -> tuple[Any, dict[str, Any]]:
    """The account's servers as the list's filters and sort choose them, shared by the page and
    its CSV export."""
    state = request.GET.get("state", "")
    purpose = request.GET.get("purpose", "")
    search = request.GET.get("q", "").strip()[:100]
    sorting = Sorting(request, SORT_COLUMNS, default="name")
    listed = filter_servers(servers_of(account), state=state, purpose=purpose, search=search)
    listed = listed.order_by(*SERVER_ORDERINGS[sorting.value])
    filters = dict(
        state=state, purpose=purpose, q=search, sorting=sorting, filtered=bool(purpose or search)
    )
    return listed, filters


@dataclass(frozen=True)
class ServerListing:
    """A listed server with what it holds, its over-use and its last license file."""

    server: Server
    held: list[HeldLine]
    over: list[OverUse]
    offline_file: OfflineFile | None


def _listings(
    servers: Iterable[Server], products: dict[str, Product] | None = None
) -> list[ServerListing]:
    """What each listed server holds and any over-use: from their prefetched rows, plus one
    query for the applications they report (some may not be held at all) unless `products`
    already has them."""
    servers = list(servers)
    if products is None:
        reported = {code for server in servers for code in server.reported_usage or {}}
        products = (
            {p.code: p for p in Product.objects.filter(code__in=reported)} if reported else {}
        )
    now = timezone.now()
    listings = []
    for server in servers:
        held = held_lines(server)
        listings.append(
            ServerListing(
                server=server,
                held=held,
                over=over_use_of(
                    server, {line.product.code: line.quantity for line in held}, products
                ),
                offline_file=(
                    last_offline_file(server, now, server.assignments.all())
                    if server.state == Server.State.OFFLINE
                    else None
                ),
            )
        )
    return listings


@login_required
@require_http_methods(["GET", "POST"])
def servers(request: HttpRequest, account_id: str) -> HttpResponse:
    actor = actor_for(request)
    account = get_account_for(actor, account_id)
    form = ServerForm(request.POST or None)
    status = 200
    if request.method == "POST":
        access_manage_accounts(actor)
        status = 400  # the form's own errors
        if form.is_valid():
            try:
                server = services.create_server(account=account, actor=actor, **form.cleaned_data)
            except TokenError as exc:
                status = refusal(request, exc, form)
            else:
                messages.success(
                    request,
                    f"Server “{server.name}” created. Assign capacity to it to get its "
                    "activation token.",
                )
                return redirect("tokens:server", server_id=server.pk)
    listed, filters = _listed_servers(request, account)
    page = Paginator(listed, 25).get_page(request.GET.get("page"))
    listings = _listings(page)
    counts = server_counts_by_state(account)
    return render(
        request,
        "tokens/servers.html",
        dict(
            account=account,
            page=page,
            listings=listings,
            form=form,
            state_filters=[(v, label, counts.get(v, 0)) for v, label in Server.State.choices],
            purposes=Server.Purpose.choices,
            any_servers=any(counts.values()),
            export_query=request.GET.urlencode(),
            tab="servers",
            **filters,
        ),
        status=status,
    )


CSV_COLUMNS = [
    "id",
    "name",
    "purpose",
    "state",
    "hostname",
    "version",
    "last_sync_utc",
    "activated_utc",
    "created_utc",
    "product",
    "product_name",
    "held",
    "in_use",
    "over_use",
    "license_file_issued_utc",
    "license_file_out_of_date",
]


def _utc(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _csv_rows(listed: Any) -> Iterator[list[Any]]:
    """One line per server and application it holds or reports using (a server holding
    nothing still gets one line), so a spreadsheet can filter and sum each column."""
    catalog = {p.code: p for p in Product.objects.all()}  # a few dozen applications at most
    for server in listed.iterator(chunk_size=500):
        (listing,) = _listings([server], catalog)
        base = [
            server.pk,
            server.name,
            server.purpose,
            server.state,
            server.hostname,
            server.reported_version,
            _utc(server.last_sync_at),
            _utc(server.activated_at),
            _utc(server.created_at),
        ]
        offline_file = listing.offline_file
        license_file = (
            [_utc(offline_file.issued_at), "yes" if offline_file.out_of_date else "no"]
            if offline_file
            else ["", ""]
        )
        over = {o.product.code: o for o in listing.over}
        lines = [
            (line.product.code, line.product.name, line.quantity, line.used)
            for line in listing.held
        ]
        held_codes = {code for code, *_ in lines}
        lines += [
            (o.product.code, o.product.name, 0, o.used)
            for o in listing.over
            if o.product.code not in held_codes
        ]
        if not lines:
            yield [*base, "", "", 0, "", "", *license_file]
        for code, name, quantity, used in lines:
            excess = over[code].excess if code in over else 0
            used_cell = "" if used is None else used
            yield [*base, code, name, quantity, used_cell, excess, *license_file]


@login_required
@require_safe
def servers_csv(request: HttpRequest, account_id: str) -> HttpResponse | StreamingHttpResponse:
    """The servers list as it is filtered and sorted, as CSV (every cell inert, S25); at most
    EXPORT_MAX_ROWS servers (kernel/exports.py)."""
    account = get_account_for(actor_for(request), account_id)
    listed, _ = _listed_servers(request, account)
    filename = f"servers-{slugify(account.name) or 'account'}.csv"
    back = f"{reverse('tokens:servers', args=[account.pk])}?{request.GET.urlencode()}"
    return csv_export(request, filename, CSV_COLUMNS, _csv_rows(listed), counted=listed, back=back)


class Step(StrEnum):
    """What a server's page asks of its reader next, one step at a time."""

    ASSIGN = "assign"  # a new server holding nothing: no token can be made yet
    MAKE_TOKEN = "make_token"  # holds capacity, no usable token (none yet, or it expired)
    ACTIVATE = "activate"  # a token is out: use it on the AppSuite server
    TOKEN_SHOWN = "token_shown"  # the token is on the page now, once
    REFRESH_FILE = "refresh_file"  # offline, and the file on the server says less than it holds
    OFFLINE_OK = "offline_ok"  # offline, its license file is current
    DEACTIVATED = "deactivated"
    NONE = ""


def next_step(
    server: Server,
    *,
    holds_capacity: bool,
    token: object | None,
    new_token: bool,
    offline_file: OfflineFile | None,
) -> Step:
    if server.is_deactivated:
        return Step.DEACTIVATED
    if server.is_pending:
        if new_token:
            return Step.TOKEN_SHOWN
        if token is not None:
            return Step.ACTIVATE
        return Step.MAKE_TOKEN if holds_capacity else Step.ASSIGN
    if server.state == Server.State.OFFLINE:
        return Step.REFRESH_FILE if offline_file and offline_file.out_of_date else Step.OFFLINE_OK
    return Step.NONE


@dataclass(frozen=True)
class OverUseFix:
    """One over-use and what fixes it: assign `assign` more (raising what the server holds to
    `assign_to`) from what the account has available, and order `order` more beyond it."""

    over: OverUse
    available: int
    assign: int
    order: int

    @property
    def assign_to(self) -> int:
        return self.over.held + self.assign


def over_use_fixes(over: list[OverUse], every: list[Holding]) -> list[OverUseFix]:
    by_code = {h.product.code: h for h in every}
    fixes = []
    for o in over:
        holding = by_code.get(o.product.code)
        available = holding.usable_available if holding else 0
        assign = min(available, o.excess)
        fixes.append(OverUseFix(o, available, assign, o.excess - assign))
    return fixes


@dataclass(frozen=True)
class UsageChart:
    series: UsageSeries
    svg: str
    dom_id: str


def usage_charts(server: Server, every: list[Holding], now: datetime) -> list[UsageChart]:
    """The server's use per application over the last days, each drawn as an SVG."""
    charts = []
    for n, series in enumerate(usage_series_of(server, every, now)):
        dom_id = f"usage-{n}"
        charts.append(UsageChart(series, usage_chart_svg(series, chart_id=dom_id), dom_id))
    return charts


def _server_page(
    request: PortalRequest,
    server: Server,
    *,
    status: int = 200,
    errors: Mapping[str, list[str] | ErrorList] | None = None,
    **extra: object,
) -> HttpResponse:
    now = timezone.now()
    errors = errors or {}
    every = holdings(server, now)
    held, held_more = bounded_holdings(
        every,
        keep=errors,
        show_all=request.GET.get("applications") == "all",
    )
    token = current_token(server, now) if server.is_pending else None
    over = over_use_of(
        server,
        {h.product.code: h.held for h in held},
        {h.product.code: h.product for h in held},
    )
    offline_file = last_offline_file(server, now) if server.state == Server.State.OFFLINE else None
    # Refusals show beside their field; those with no field on the page (a deactivated
    # server, an application the account lacks) above the table.
    # (and a line this server may not hold: subscriptions on an offline server)
    fields = (
        set()
        if server.is_deactivated
        else {h.product.code for h in held if not h.subscription_only}
    )
    context = dict(
        account=server.account,
        server=server,
        holdings=held,
        holdings_more=held_more,
        errors=errors,
        unplaced_errors={code: e for code, e in errors.items() if code not in fields},
        over_use=over,
        over_use_fixes=over_use_fixes(over, every),
        token=token,
        next_step=next_step(
            server,
            holds_capacity=any(h.held for h in every),
            token=token,
            new_token=bool(extra.get("new_token")),
            offline_file=offline_file,
        ),
        same_machine=same_machine_as(server),
        offline_allowed=server.state in (Server.State.PENDING, Server.State.OFFLINE),
        offline_file=offline_file,
        holds_subscription=holds_subscription(server),
        usage_charts=usage_charts(server, every, now),
        tab="servers",
        **{
            "offline_form": OfflineRequestForm(),
            "rename_form": RenameForm(initial={"name": server.name}),
            **extra,
        },
    )
    new_token = extra.get("new_token")
    if isinstance(new_token, services.MintedToken):
        context["token_qr"] = token_qr_svg(new_token.raw)
        # Plain http is this machine in development: the agent takes it in development mode only.
        dev = " --insecure-dev" if settings.SITE_URL.startswith("http://") else ""
        context["agent_command"] = (
            f"appsuite-agent{dev} activate {new_token.raw} --url {settings.SITE_URL}"
        )
    template = "tokens/_server_body.html" if request.htmx else "tokens/server.html"
    return render(request, template, context, status=status)


@login_required
@require_safe
def server_detail(request: PortalRequest, server_id: str) -> HttpResponse:
    return _server_page(request, get_server_for(actor_for(request), server_id))


@login_required
@require_POST
def assign(request: PortalRequest, server_id: str, product: str) -> HttpResponse:
    """Set what the server holds of one product. The page is rendered, not redirected to, so a
    freshly minted token can be shown once. A refusal re-renders it with the error beside the
    field, which shows what the server really holds now (another tab may have changed it)."""
    actor = actor_for(request)
    server = get_rw_server_for(actor, server_id)
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
        status = refusal(request, exc, form, field="quantity")
        errors = {product_obj.code: form.errors["quantity"]}
        return _server_page(request, server, status=status, errors=errors)
    if result.changed:
        messages.success(
            request,
            f"{server.name} now holds {result.quantity} {product_obj.unit} of {product_obj.name}.",
        )
    else:
        messages.info(
            request,
            f"Nothing changed: {server.name} already holds {result.quantity} "
            f"{product_obj.unit} of {product_obj.name}.",
        )
    return _server_page(request, result.server, new_token=result.token)


@login_required
@require_POST
def regenerate_token(request: PortalRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    server = get_rw_server_for(actor, server_id)
    try:
        minted = services.mint_token(server=server, actor=actor)
    except TokenError as exc:
        # Rendered, not redirected to: a stale tab sees why, and the server as it is now.
        return _server_page(request, server, status=refusal(request, exc))
    messages.success(request, "A new token is ready; the previous one no longer works.")
    return _server_page(request, server, new_token=minted)


@login_required
@require_POST
def rename(request: PortalRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    server = get_rw_server_for(actor, server_id)
    form = RenameForm(request.POST)
    status = 400  # the form's own errors
    if form.is_valid():
        try:
            services.rename_server(server=server, name=form.cleaned_data["name"], actor=actor)
        except TokenError as exc:
            status = refusal(request, exc, form)
        else:
            messages.success(request, f"Renamed to “{server.name}”.")
            return redirect("tokens:server", server_id=server.pk)
    return _server_page(request, server, status=status, rename_form=form)


@login_required
@require_http_methods(["GET", "POST"])
def deactivate(request: PortalRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    server = get_rw_server_for(actor, server_id)
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
def offline_activation(request: PortalRequest, server_id: str) -> HttpResponse:
    """Upload a request file, download the signed license file (perpetual capacity only)."""
    actor = actor_for(request)
    server = get_rw_server_for(actor, server_id)
    form = OfflineRequestForm(request.POST, request.FILES)
    if not form.is_valid():
        return _server_page(request, server, status=400, offline_form=form)
    try:
        license_file = exchange.activate_offline(
            server=server,
            request=exchange.OfflineRequest(**form.cleaned_data["request_file"]),
            actor=actor,
        )
    except TokenError as exc:
        status = refusal(request, exc, form, field="request_file")
        server = get_server_for(actor, server.pk)
        return _server_page(request, server, status=status, offline_form=form)
    response = HttpResponse(json.dumps({"license": license_file}), content_type="application/json")
    filename = slugify(server.name) or "server"
    response["Content-Disposition"] = f'attachment; filename="license-{filename}.json"'
    return response
