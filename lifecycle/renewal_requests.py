"""A customer asks its partner to renew a license ending soon: the partner of record is
e-mailed (through the outbox) and sees it on its renewals dashboard; once per license and term."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from kernel.errors import AccessDenied
from notifications.tasks import enqueue_email
from orders.models import Order
from orders.services import partner_recipients
from smartaccounts.access import access_write
from smartaccounts.actors import Actor
from smartaccounts.audit import record_event
from smartaccounts.errors import AccountError
from smartaccounts.models import License, Organization

from .models import RenewalRequest
from .selectors import HORIZON

RENEWAL_REQUEST_EMAIL = "renewal_request"
RENEWAL_REQUESTED = "license.renewal_requested"


def next_end(lic: License, now: datetime) -> datetime | None:
    """The end the renewals dashboard shows for `lic`: its term's or its care's, whichever ends
    first within the dashboard's 90 days; None when neither does."""
    soon = now + HORIZON
    ends = [end for end in (lic.ends_at, lic.care_ends_at) if end and now < end <= soon]
    return min(ends) if ends else None


def may_ask_to_renew(lic: License, now: datetime) -> bool:
    return lic.state == License.State.ACTIVE and next_end(lic, now) is not None


def partner_of_record(lic: License) -> Organization | None:
    """The reseller of the latest order that delivered or renewed the license; else the one
    serving the customer (the first by name)."""
    reseller_id = (
        Order.objects.filter(lines__license=lic)
        .order_by("-created_at")
        .values_list("reseller_id", flat=True)
        .first()
    )
    partners = Organization.objects.filter(kind=Organization.Kind.RESELLER)
    if reseller_id is not None:
        return partners.filter(pk=reseller_id).first()
    return (
        partners.filter(customer_links__customer_id=lic.account.organization_id)
        .order_by("name")
        .first()
    )


def ask_partner_to_renew(
    *, license: License, actor: Actor, now: datetime | None = None
) -> tuple[RenewalRequest, bool]:
    """Ask the partner of record to renew `license` (one of the actor's own, as a customer).
    Returns (the request, whether it is new); asking again about the same term sends nothing."""
    now = now or timezone.now()
    org = actor.organization
    if org is None or org.kind != Organization.Kind.CUSTOMER:
        raise AccessDenied("Only the customer asks its partner to renew.")
    access_write(actor)
    with transaction.atomic():
        lic = (
            License.objects.select_for_update()
            .select_related("account", "product")
            .get(pk=license.pk, account__organization=org)
        )
        period = next_end(lic, now)
        if lic.state != License.State.ACTIVE or period is None:
            raise AccountError(
                "validation_error",
                "Only a license whose term or care ends within 90 days can be asked about.",
            )
        existing = RenewalRequest.objects.filter(license=lic, period_ends_at=period).first()
        if existing is not None:
            return existing, False
        partner = partner_of_record(lic)
        if partner is None:
            raise AccountError("validation_error", "No partner serves this account.")
        try:
            with transaction.atomic():
                request = RenewalRequest.objects.create(
                    license=lic,
                    period_ends_at=period,
                    partner=partner,
                    requested_by=actor.user,
                    created_at=now,
                )
        except IntegrityError:  # asked at the same moment from another tab: that one counts
            return RenewalRequest.objects.get(license=lic, period_ends_at=period), False
        enqueue_email(
            kind=RENEWAL_REQUEST_EMAIL,
            object_id=str(request.pk),
            to=partner_recipients(partner),
        )
        record_event(
            actor=actor,
            action=RENEWAL_REQUESTED,
            obj=lic,
            account=lic.account,
            data={
                "product": lic.product.code,
                "partner": partner.name,
                "ends_at": period.isoformat(),
            },
        )
    return request, True
