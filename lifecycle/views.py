from datetime import UTC, datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from kernel.exports import csv_export
from kernel.keyset import Key, portal_page
from kernel.pages import refusal
from smartaccounts.actors import PortalRequest, actor_for
from smartaccounts.errors import AccountError
from smartaccounts.models import Organization
from smartaccounts.selectors import accounts_for, get_account_for, get_license_for
from tokens.selectors import overused_servers_in

from . import history, reminders, renewal_requests
from .forms import NotificationsForm
from .selectors import (
    SORTS,
    account_overview,
    history_actions,
    history_for,
    locked_orders_for,
    renewal_opportunities,
    renewal_page_source,
    stale_servers_for,
)

POLL_SECONDS = 30


@login_required
@require_safe
def account_dashboard(request: PortalRequest, account_id: str) -> HttpResponse:
    actor = actor_for(request)
    account = get_account_for(actor, account_id)
    context = {
        "account": account,
        "overview": account_overview(account, timezone.now()),
        "poll_seconds": POLL_SECONDS,
        "tab": "overview",
        "now": timezone.now(),
    }
    template = (
        "lifecycle/_overview_live.html" if request.htmx else "lifecycle/account_dashboard.html"
    )
    return render(request, template, context)


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    day = parse_date(value or "")
    if day is None:
        return None
    moment = datetime.combine(day, time.min, tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


# Newest first; the pk breaks ties between events of the same instant.
HISTORY_KEYS = (Key("created_at", descending=True), Key("pk", descending=True))


def _without_format(request: HttpRequest) -> str:
    """The list a CSV export came from: the same filters, as a page."""
    params = request.GET.copy()
    params.pop("format", None)
    return f"{request.path}?{params.urlencode()}"


@login_required
@require_safe
def account_history(request: HttpRequest, account_id: str) -> HttpResponse | StreamingHttpResponse:
    actor = actor_for(request)
    account = get_account_for(actor, account_id)
    action = request.GET.get("action", "")
    since, until = _day(request.GET.get("since")), _day(request.GET.get("until"), end=True)
    # A code of the vocabulary is matched exactly (an index finds it); anything else is taken
    # as the start of codes ("license").
    events = history_for(
        account,
        viewer=actor,
        action=action,
        since=since,
        until=until,
        known_actions=history.ACTION_LABELS,
    )
    if request.GET.get("format") == "csv":
        return csv_export(
            request,
            f"history-{account.pk}.csv",
            history.CSV_HEADER,
            history.csv_rows(events.iterator(chunk_size=500), actor),
            counted=events,
            back=_without_format(request),
        )
    page = portal_page(request, events, HISTORY_KEYS, size=50, tag="history")
    return render(
        request,
        "lifecycle/account_history.html",
        {
            "account": account,
            "page": page,
            "entries": history.entries(list(page), actor),
            "actions": [
                (code, history.action_label(code))
                for code in history_actions(account, viewer=actor)
            ],
            "action": action,
            "since": request.GET.get("since", ""),
            "until": request.GET.get("until", ""),
            "tab": "history",
        },
    )


@login_required
@require_safe
def renewals(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The partner's view across all its customers: renewal opportunities and trouble."""
    actor = actor_for(request)
    if actor.organization is None or not actor.organization.is_partner:
        raise Http404
    now = timezone.now()
    sort = request.GET.get("sort", "ends")
    sort = sort if sort in SORTS else "ends"
    if request.GET.get("format") == "csv":
        opportunities = renewal_opportunities(actor, now, sort)
        return csv_export(
            request,
            "renewal-opportunities.csv",
            [
                "customer",
                "product",
                "kind",
                "quantity",
                "term_ends_at",
                "care_ends_at",
                "next_end",
                "auto_renew",
                "license_id",
            ],
            (
                (
                    lic.account.name,
                    lic.product.code,
                    lic.kind,
                    lic.quantity,
                    lic.ends_at.isoformat() if lic.ends_at else "",
                    lic.care_ends_at.isoformat() if lic.care_ends_at else "",
                    lic.next_end.isoformat(),
                    lic.auto_renew if lic.kind == "subscription" else "",
                    lic.pk,
                )
                for lic in opportunities.iterator(chunk_size=500)
            ),
            counted=opportunities,
            back=_without_format(request),
        )
    context = {
        "page": portal_page(
            request,
            renewal_page_source(actor, now, sort),
            [Key(f.removeprefix("-"), descending=f.startswith("-")) for f in SORTS[sort]],
            size=25,
            tag=f"renewals:{sort}",
        ),
        "sort": sort,
        "stale": stale_servers_for(actor)[:50],
        "overused": overused_servers_in(accounts_for(actor))[:50],
        "locked": locked_orders_for(actor)[:50],
        "now": now,
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "lifecycle/renewals.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def notifications(request: PortalRequest) -> HttpResponse:
    """Each person's own e-mail settings: a customer's users may turn expiry reminders off."""
    actor = actor_for(request)
    user = request.user
    # Bound on every POST: an unticked box sends nothing, and that is the answer "off".
    form = NotificationsForm(
        request.POST if request.method == "POST" else None,
        initial={"expiry_reminders": user.expiry_reminders},
    )
    if request.method == "POST" and form.is_valid():
        enabled = form.cleaned_data["expiry_reminders"]
        reminders.set_expiry_reminders(user=user, enabled=enabled, actor=actor)
        messages.success(
            request, "Expiry reminders are on." if enabled else "Expiry reminders are off."
        )
        return redirect("lifecycle:notifications")
    org = actor.organization
    return render(
        request,
        "lifecycle/notifications.html",
        {
            "form": form,
            "organization": org,
            "is_customer": org is not None and org.kind == Organization.Kind.CUSTOMER,
        },
    )


@login_required
@require_POST
def ask_renewal(request: PortalRequest, license_id: str) -> HttpResponse:
    """A customer asks its partner to renew a license ending within 90 days."""
    actor = actor_for(request)
    lic = get_license_for(actor, license_id)
    try:
        asked, new = renewal_requests.ask_partner_to_renew(license=lic, actor=actor)
    except AccountError as exc:
        refusal(request, exc)
    else:
        if new:
            messages.success(
                request,
                f"{asked.partner.name} has been asked to renew {lic.product.name}.",
            )
        else:
            messages.info(
                request,
                f"You asked {asked.partner.name} to renew {lic.product.name} on "
                f"{asked.created_at:%Y-%m-%d} already; they were told then.",
            )
    url = reverse("smartaccounts:account", args=[lic.account_id])
    return redirect(f"{url}?expand={lic.product.code}")
