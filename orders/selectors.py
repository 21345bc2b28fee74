from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404

from kernel.identifiers import uuid_or_404
from kernel.keyset import AnyOf
from smartaccounts.access import access_write
from smartaccounts.actors import Actor
from smartaccounts.models import License

from .models import Order, OrderLine, visibility

# What a row of the orders lists shows of the order's organizations and account.
ORDER_RELATED = ("placed_by", "reseller", "customer", "account")
# Lines a row of the orders API carries when asked for them (`?expand=lines`), by position; the
# order itself carries them all. A page of 200 orders thus holds at most 4,000 lines.
LIST_LINES = 20


def orders_for(actor: Actor) -> QuerySet[Order]:
    return Order.objects.visible_to(actor).select_related(*ORDER_RELATED)


def order_list_for(actor: Actor) -> AnyOf:
    """The orders `orders_for` holds, as a list to page through (kernel.keyset): each condition
    of the visibility walked on its own index (order_placed_by_time_idx,
    order_reseller_time_idx), so a page reads about its own rows whatever the number of orders
    and whoever else's they are. Filter it with `.filter()`."""
    orders = Order.objects.select_related(*ORDER_RELATED)
    conditions = visibility(actor)
    if not conditions:
        return AnyOf(orders.none(), (Q(),))
    return AnyOf(orders, conditions)


def order_summaries_for(actor: Actor, *, lines: int = 0) -> AnyOf:
    """`order_list_for` with each order's `line_count` and `total_quantity` (its new and
    expansion lines' quantities), computed for the page's rows only; with `lines`, also its
    first `lines` lines by position as `first_lines` (one more query for the page)."""
    source = order_list_for(actor)
    of_order = OrderLine.objects.filter(order=OuterRef("pk")).order_by().values("order")
    orders = source.queryset.annotate(
        line_count=Coalesce(Subquery(of_order.annotate(n=Count("pk")).values("n")), 0),
        total_quantity=Coalesce(Subquery(of_order.annotate(q=Sum("quantity")).values("q")), 0),
    )
    if lines:
        first = OrderLine.objects.select_related("product").order_by("order_id", "position")
        orders = orders.prefetch_related(
            Prefetch("lines", queryset=first[:lines], to_attr="first_lines")
        )
    return AnyOf(orders, source.conditions)


def orders_with_lines_for(actor: Actor) -> QuerySet[Order]:
    """Orders with their lines and the lines' licenses: the lines of these orders only, then
    their licenses by id (a join to the license table in the lines' query let the planner
    hash the whole table). Lines are ordered by their own columns: OrderLine's default
    ordering goes through the order, and joining the orders table to sort them read all of it)."""
    return orders_for(actor).prefetch_related(
        Prefetch(
            "lines",
            queryset=OrderLine.objects.select_related("product")
            .order_by("order_id", "position")
            .prefetch_related(
                Prefetch("license", queryset=License.objects.select_related("product"))
            ),
        )
    )


def get_order_for(actor: Actor, order_id: object) -> Order:
    return get_object_or_404(orders_with_lines_for(actor), pk=uuid_or_404(order_id))


def get_order_to_release_for(actor: Actor, order_id: object) -> Order:
    """The order `actor` may unlock or re-send (`Order.may_release`); 404 for anyone else,
    including a reseller looking at the order its distributor placed for it."""
    order = get_order_for(actor, order_id)
    if not order.may_release(actor):
        raise Http404("No such order.")
    return order


def get_rw_order_for(actor: Actor, order_id: object) -> Order:
    """The order a portal user unlocks or re-sends: a viewer is refused (403) before any
    lookup, anyone but the holder gets a 404 (the services ask `access_release_order` again)."""
    access_write(actor, "Viewers cannot unlock orders or re-send their e-mails.")
    return get_order_to_release_for(actor, order_id)
