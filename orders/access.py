"""Who may release an order (unlock it, re-send its e-mail): the one rule, asked by the views
(through ``get_rw_order_for``) and again by the services."""

from smartaccounts.access import access_write
from smartaccounts.actors import Actor

from .errors import OrderError
from .models import Order


def access_release_order(actor: Actor, order: Order) -> None:
    """Only the order's holder (`Order.may_release`), and of its people only those who write.
    Anyone else is told the order does not exist (``not_found``), as for another tenant's."""
    if not order.may_release(actor):
        raise OrderError("not_found", "No such order.")
    access_write(actor, "Viewers cannot unlock orders or re-send their e-mails.")
