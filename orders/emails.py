"""The one e-mail per order (details and the unlock link, minted when it is sent), and the
customer's e-mail once the order is unlocked."""

from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from notifications.models import OutboundEmail
from notifications.renderers import register
from notifications.services import link_secret
from smartaccounts.actors import Actor
from smartaccounts.audit import record_event

from .models import Order
from .services import (
    LICENSES_AVAILABLE_EMAIL,
    ORDER_EMAIL,
    record_unlock_link_issued,
    set_unlock_secret,
)


def unlock_url(secret: str) -> str:
    return settings.SITE_URL + reverse("orders:unlock", args=[secret])


@register(ORDER_EMAIL)
def render_order_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    order = (
        Order.objects.select_related("placed_by", "reseller", "customer", "account")
        .prefetch_related("lines__product", "lines__license")
        .filter(pk=row.object_id)
        .first()
    )
    if order is None:
        return None
    link = None
    if order.is_locked:
        # Derived from the row: a repeated delivery carries the same, working link, which
        # lives from the e-mail's date (the row's). Its hash is committed before the message
        # leaves; its issue date once the send is recorded.
        secret = link_secret(row, "unlock")
        set_unlock_secret(order=order, secret=secret)
        link = unlock_url(secret)
    context = {
        "order": order,
        "lines": list(order.lines.all()),
        "unlock_url": link,
        "link_expires_at": (
            row.created_at + timedelta(days=settings.UNLOCK_LINK_TTL_DAYS) if link else None
        ),
        "link_days": settings.UNLOCK_LINK_TTL_DAYS,
        "portal_url": settings.SITE_URL + reverse("orders:list"),
        "site_url": settings.SITE_URL,
    }
    subject = f"Order {order.reference} for {order.customer.name}"
    subject += " — unlock your licenses" if link else " — applied"
    message = EmailMultiAlternatives(
        # Intake refuses line breaks in the reference and the customer's name (S24); an order
        # taken before that still gets its e-mail, on one line.
        subject=subject,
        body=render_to_string("emails/order.txt", context),
        to=row.to,
    )
    message.attach_alternative(render_to_string("emails/order.html", context), "text/html")

    def after_sent() -> None:
        """Recorded with the row once the message has left."""
        if link is not None:
            record_unlock_link_issued(order=order, issued_at=row.created_at)
        record_event(
            actor=Actor.system("outbox"),
            action="order.email_sent",
            obj=order,
            account=order.account,
            data={"to": row.to, "with_unlock_link": link is not None},
        )

    message.after_sent = after_sent  # type: ignore[attr-defined]
    return message


@register(LICENSES_AVAILABLE_EMAIL)
def render_licenses_available_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    """Tells the customer's people that an unlocked order's licenses are theirs to use."""
    order = (
        Order.objects.select_related("reseller", "customer", "account")
        .prefetch_related("lines__product")
        .filter(pk=row.object_id)
        .first()
    )
    if order is None or order.is_locked:
        return None
    context = {
        "order": order,
        "lines": list(order.lines.all()),
        "account_url": settings.SITE_URL
        + reverse("smartaccounts:account", args=[order.account_id]),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"New licenses are available in {order.account.name}'s Smart Account",
        body=render_to_string("emails/licenses_available.txt", context),
        to=row.to,
    )
    message.attach_alternative(
        render_to_string("emails/licenses_available.html", context), "text/html"
    )
    message.after_sent = lambda: record_event(  # type: ignore[attr-defined]
        actor=Actor.system("outbox"),
        action="order.customer_notified",
        obj=order,
        account=order.account,
        data={"to": row.to},
    )
    return message
