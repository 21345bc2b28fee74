"""After an order is placed: unlocking it (from the portal or the e-mailed link), re-sending its
e-mail, and telling the customer its licenses are available."""

from datetime import datetime

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import transaction
from django.utils import timezone

from notifications.models import OutboundEmail
from notifications.tasks import enqueue_email
from smartaccounts.actors import Actor
from smartaccounts.audit import record_event
from smartaccounts.members import invite_contact, resend_invitation
from smartaccounts.models import License, Organization, User
from smartaccounts.secrets import hash_secret, secret_matches

from .access import access_release_order
from .errors import OrderError
from .models import Order

ORDER_EMAIL = "order"
LICENSES_AVAILABLE_EMAIL = "licenses_available"


def partner_recipients(org: Organization) -> list[str]:
    if org.email:
        return [org.email]
    return list(
        User.objects.filter(organization=org, role=User.Role.ADMIN, is_active=True).values_list(
            "email", flat=True
        )
    )


def unlock_order(*, order: Order, actor: Actor) -> tuple[Order, bool]:
    """Unlock every license of the order. Returns (order, changed); a second call is harmless.

    Only the order's holder may (`Order.may_release`); anyone else gets not_found, as if the
    order did not exist, and nothing changes.
    """
    access_release_order(actor, order)
    return _release(order, actor)


def unlock_order_with_link(*, secret: str, actor: Actor) -> tuple[Order, bool]:
    """Unlock the order whose e-mail link carries `secret`: the link is the placing
    organization's capability for this one order (S8), so it stands in for the holder check.
    A link past its lifetime (S28) raises unlock_link_expired and changes nothing."""
    order = find_order_by_unlock_secret(secret)
    if order is None:
        raise OrderError("not_found", "This unlock link is not valid.")
    return _release(order, actor, link_secret=secret)


def _release(order: Order, actor: Actor, *, link_secret: str | None = None) -> tuple[Order, bool]:
    with transaction.atomic():
        locked = (
            Order.objects.select_for_update()
            .select_related("placed_by", "reseller", "customer", "account")
            .get(pk=order.pk)
        )
        now = timezone.now()
        if link_secret is not None:
            if not secret_matches(link_secret, locked.unlock_secret_hash):
                # A new e-mail retired this link while the request was on its way.
                raise OrderError("not_found", "This unlock link is not valid.")
            if locked.unlock_link_expired(now):
                raise OrderError(
                    "unlock_link_expired",
                    f"This unlock link has expired: {locked.placed_by.name}, which placed the "
                    "order, can re-send its e-mail from the portal's Orders page for a new one.",
                )
        if not locked.is_locked:
            return locked, False
        License.objects.filter(order_lines__order=locked, state=License.State.LOCKED).update(
            state=License.State.ACTIVE, starts_at=now
        )
        locked.state = Order.State.UNLOCKED
        locked.unlocked_at = now
        locked.unlocked_by = actor.label[:200]
        locked.save(update_fields=["state", "unlocked_at", "unlocked_by"])
        record_event(
            actor=actor,
            action="order.unlocked",
            obj=locked,
            account=locked.account,
            data={"reference": locked.reference},
        )
        _tell_customer(locked, actor)
    return locked, True


def find_order_by_unlock_secret(secret: str) -> Order | None:
    if not secret:
        return None
    order = (
        Order.objects.select_related("placed_by", "reseller", "customer", "account")
        .filter(unlock_secret_hash=hash_secret(secret))
        .first()
    )
    if order is None or not secret_matches(secret, order.unlock_secret_hash):
        return None
    return order


def resend_order_email(*, order: Order, actor: Actor) -> Order:
    """Send the order e-mail again with a new link; the previous link stops working now.

    Only the order's holder may (`Order.may_release`); anyone else gets not_found.
    """
    access_release_order(actor, order)
    with transaction.atomic():
        # An earlier e-mail still waiting (or whose sender died mid-way) is closed: only the
        # new one's link may work. Closed first, under the rows' locks: a sender rendering one
        # of them holds its lock, so it either binds its link before this re-send clears it,
        # or finds its row closed and sends nothing (notifications.services). Rows first and
        # the order second, as the sender does, so the two never deadlock.
        # An earlier e-mail given up on is closed too: the order's page stops saying so.
        OutboundEmail.objects.filter(
            kind=ORDER_EMAIL,
            object_id=str(order.pk),
            state__in=[OutboundEmail.State.PENDING, OutboundEmail.State.FAILED],
        ).update(
            state=OutboundEmail.State.CLOSED,
            sent_at=timezone.now(),
            claimed_until=None,
            last_error="Replaced by a re-sent e-mail.",
        )
        locked = Order.objects.select_for_update().select_related("placed_by").get(pk=order.pk)
        if not locked.is_locked:
            raise OrderError("validation_error", "This order is already unlocked.")
        locked.unlock_secret_hash = ""
        locked.unlock_link_issued_at = None
        locked.save(update_fields=["unlock_secret_hash", "unlock_link_issued_at"])
        enqueue_email(
            kind=ORDER_EMAIL, object_id=str(locked.pk), to=partner_recipients(locked.placed_by)
        )
        record_event(
            actor=actor,
            action="order.email_resent",
            obj=locked,
            account=locked.account,
            data={"reference": locked.reference},
        )
    return locked


def set_unlock_secret(*, order: Order, secret: str) -> None:
    """Bind the unlock secret of an order e-mail to the order (called while sending it, before
    the message leaves, so the link works as soon as it arrives). Sets it on `order` too."""
    secret_hash = hash_secret(secret)
    Order.objects.filter(pk=order.pk).update(unlock_secret_hash=secret_hash)
    order.unlock_secret_hash = secret_hash


def record_unlock_link_issued(*, order: Order, issued_at: datetime) -> None:
    """The e-mail carrying the current unlock link has been sent (called when its send is
    recorded). `issued_at` is the e-mail's own date, so the link's lifetime counts from the
    message and a repeated delivery of the same e-mail keeps the same end. Until then the
    order's page does not say a link was sent."""
    Order.objects.filter(pk=order.pk).update(unlock_link_issued_at=issued_at)
    order.unlock_link_issued_at = issued_at


def customer_recipients(customer: Organization) -> list[str]:
    """Who hears that licenses arrived: the customer's admins who can log in, or, when it has
    no such admin, everyone of it who can. Empty for a first-time contact."""
    users = (
        User.objects.filter(organization=customer, is_active=True)
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .order_by("email")
        .values_list("email", "role")
    )
    admins = [email for email, role in users if role == User.Role.ADMIN]
    return admins or [email for email, _ in users]


def _tell_customer(order: Order, actor: Actor) -> None:
    """One e-mail per unlock: the licenses are in the Smart Account. A customer nobody of
    which can log in yet gets the invitation instead (it says the licenses are waiting)."""
    recipients = customer_recipients(order.customer)
    if recipients:
        enqueue_email(kind=LICENSES_AVAILABLE_EMAIL, object_id=str(order.pk), to=recipients)
    else:
        _invite_first_customer_user(order, actor)


def _invite_first_customer_user(order: Order, actor: Actor) -> None:
    customer = order.customer
    pending = list(customer.users.filter(is_active=True))
    if pending:
        # Invited by an earlier order but not signed up yet: invite them again.
        for user in pending:
            resend_invitation(user=user, actor=actor, licenses_from=order.reseller)
        return
    if customer.users.exists() or not customer.email:
        return
    invite_contact(
        organization=customer, email=customer.email, actor=actor, licenses_from=order.reseller
    )
