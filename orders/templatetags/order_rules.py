"""Order rules the pages ask about, so a button shows only to whom the service will obey."""

from django import template

from smartaccounts.actors import Actor
from smartaccounts.models import User

from ..models import Order

register = template.Library()


@register.filter
def releasable_by(order: Order, user: User) -> bool:
    """Whether `user` may unlock `order` or re-send its e-mail: a locked order, a user who
    writes, and the order's holder (`Order.may_release`)."""
    if not order.is_locked or not user.is_authenticated or not user.can_write():
        return False
    return order.may_release(Actor.for_user(user))
