from django.conf import settings
from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from kernel.errors import STATUS_FOR_CODE
from kernel.keyset import AnyOf, Key, portal_page
from kernel.pages import refusal
from kernel.sorting import Sorting
from kernel.throttling import unlock_failures
from notifications.selectors import last_email_failed
from smartaccounts.actors import Actor, actor_for, client_address
from smartaccounts.decorators import partner_required

from . import services
from .errors import OrderError
from .models import Order
from .selectors import get_order_for, get_rw_order_for, order_list_for, orders_for


def _next_or_list(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "orders:list"


# The orders list's sorts (True: the first choice of that column is descending), the
# ordering behind each (newest first breaks ties so pages stay stable) and how the filter
# bar names them.
ORDER_SORTS = {"date": True, "reference": False, "customer": False, "state": False}
_ORDER_ORDERINGS = {
    "date": ("created_at", "pk"),
    "reference": ("reference", "-created_at", "pk"),
    "customer": ("customer__name", "-created_at", "pk"),
    "state": ("state", "-created_at", "pk"),
}
ORDER_SORT_CHOICES = [
    ("-date", "Newest first"),
    ("date", "Oldest first"),
    ("reference", "Reference A–Z"),
    ("-reference", "Reference Z–A"),
    ("customer", "Customer A–Z"),
    ("-customer", "Customer Z–A"),
    ("state", "Locked first"),
    ("-state", "Unlocked first"),
]


@partner_required
def order_list(request: HttpRequest) -> HttpResponse:
    sorting = Sorting(request, ORDER_SORTS, default="-date")
    actor = actor_for(request)
    # By date each half of the visibility (placed by the partner, placed for it) is walked on
    # an index of its own; the other sorts have no such index and read the partner's orders
    # once, as one query.
    orders: QuerySet[Order] | AnyOf = (
        order_list_for(actor) if sorting.column == "date" else orders_for(actor)
    )
    state = request.GET.get("state")
    if state in Order.State.values:
        orders = orders.filter(state=state)
    query = request.GET.get("q", "").strip()
    if query:
        orders = orders.filter(Q(reference__icontains=query) | Q(customer__name__icontains=query))
    ordering = _ORDER_ORDERINGS[sorting.column]
    if sorting.descending:
        ordering = (f"-{ordering[0]}", *ordering[1:])
    keys = [Key(field.removeprefix("-"), descending=field.startswith("-")) for field in ordering]
    page = portal_page(request, orders, keys, size=25, tag=f"orders:{sorting.value}")
    return render(
        request,
        "orders/order_list.html",
        {
            "page": page,
            "state": state,
            "q": query,
            "states": Order.State.choices,
            "sorting": sorting,
            "sort_choices": ORDER_SORT_CHOICES,
        },
    )


@partner_required
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    actor = actor_for(request)
    order = get_order_for(actor, order_id)
    # The order e-mail was given up on (every attempt failed for OUTBOX_GIVE_UP_HOURS).
    email_failed = order.is_locked and last_email_failed(
        kind=services.ORDER_EMAIL, object_id=str(order.pk)
    )
    # A reseller reading the order its distributor holds locked is told whom to ask: where the
    # order's e-mail goes (the holder's address, or its admins').
    held_by_other = order.is_locked and not order.may_release(actor)
    holder_contacts = services.partner_recipients(order.placed_by) if held_by_other else []
    return render(
        request,
        "orders/order_detail.html",
        {
            "order": order,
            "lines": order.lines.all(),
            "email_failed": email_failed,
            "holder_contacts": holder_contacts,
        },
    )


@partner_required
@require_safe
def delivery_sheet(request: HttpRequest, order_id: str) -> HttpResponse:
    """A printable record of the order's delivery: what, into which account, whether each
    line is still locked, and when. Read only, for whoever may read the order."""
    order = get_order_for(actor_for(request), order_id)
    lines = order.lines.select_related("product", "license")
    return render(
        request,
        "orders/delivery_sheet.html",
        {"order": order, "lines": lines, "printed_at": timezone.now()},
    )


@partner_required
@require_http_methods(["GET", "POST"])
def unlock(request: HttpRequest, order_id: str) -> HttpResponse:
    """The portal's unlock: GET shows the order and asks to confirm; only the POST unlocks.
    Only the order's holder reaches it (404 for anyone else)."""
    actor = actor_for(request)
    order = get_rw_order_for(actor, order_id)
    if request.method == "GET":
        return render(
            request, "orders/order_unlock.html", {"order": order, "lines": order.lines.all()}
        )
    _, changed = services.unlock_order(order=order, actor=actor)
    if changed:
        messages.success(
            request,
            f"Order {order.reference} unlocked: its licenses are active and "
            f"{order.customer.name} has been told.",
        )
    else:
        messages.info(request, f"Order {order.reference} was already unlocked.")
    return redirect(_next_or_list(request))


@partner_required
@require_POST
def resend(request: HttpRequest, order_id: str) -> HttpResponse:
    actor = actor_for(request)
    order = get_rw_order_for(actor, order_id)
    try:
        services.resend_order_email(order=order, actor=actor)
    except OrderError as exc:
        refusal(request, exc)
    else:
        messages.success(
            request,
            f"The e-mail for order {order.reference} is on its way with a new unlock link; "
            "the previous link no longer works.",
        )
    return redirect(_next_or_list(request))


@require_http_methods(["GET", "POST"])
def unlock_with_link(request: HttpRequest, secret: str) -> HttpResponse:
    """The e-mail's unlock link: no login. GET only shows; a CSRF-checked POST unlocks."""
    address = client_address(request)
    retry_after = unlock_failures.retry_after(address)
    if retry_after is not None:
        response = render(
            request, "orders/unlock_limited.html", {"retry_after": retry_after}, status=429
        )
        response["Retry-After"] = str(retry_after)
        response["Referrer-Policy"] = "same-origin"
        return response
    order = services.find_order_by_unlock_secret(secret)
    if order is None:
        unlock_failures.record_failure(address)
        response = render(request, "orders/unlock_unknown.html", status=404)
    elif order.unlock_link_expired(timezone.now()):
        response = _expired_link_page(request, order)
    elif request.method == "POST":
        actor = Actor.anonymous(
            label=f"unlock link sent to {order.placed_by.name}", address=address
        )
        try:
            order, changed = services.unlock_order_with_link(secret=secret, actor=actor)
        except OrderError as exc:
            if exc.code == "unlock_link_expired":  # its lifetime ended a moment ago
                response = _expired_link_page(request, order)
            else:  # a new link was sent a moment ago: this one just stopped working
                response = render(request, "orders/unlock_unknown.html", status=404)
        else:
            response = render(
                request,
                "orders/unlock_done.html",
                {
                    "order": order,
                    "changed": changed,
                    "lines": order.lines.select_related("product"),
                },
            )
    else:
        response = render(
            request,
            "orders/unlock_confirm.html",
            {"order": order, "lines": order.lines.select_related("product")},
        )
    # The secret is in the URL: never send it to another site through Referer. Not
    # "no-referrer": with it Chromium sends "Origin: null" on the confirm form's POST, which
    # CSRF protection rightly refuses. The page loads nothing from other sites.
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    return response


def _expired_link_page(request: HttpRequest, order: Order) -> HttpResponse:
    """A genuine link past its lifetime (S28): says how to get a new one, changes nothing."""
    return render(
        request,
        "orders/unlock_expired.html",
        {"order": order, "link_days": settings.UNLOCK_LINK_TTL_DAYS},
        status=STATUS_FOR_CODE["unlock_link_expired"],
    )
