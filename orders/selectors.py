from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from kernel.identifiers import uuid_or_404
from smartaccounts.access import access_write
from smartaccounts.actors import Actor

from .models import Order, OrderLine


def orders_for(actor: Actor) -> QuerySet[Order]:
    return Order.objects.visible_to(actor).select_related(
        "placed_by", "reseller", "customer", "account"
    )


def orders_with_lines_for(actor: Actor) -> QuerySet[Order]:
    return orders_for(actor).prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("product", "license__product"))
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
