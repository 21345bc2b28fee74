"""The partner's daily digest and the customer's expiry reminder e-mails."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from notifications.models import OutboundEmail
from notifications.renderers import register
from smartaccounts.models import License
from smartaccounts.selectors import partners_of

from .digests import DIGEST_EMAIL, SECTIONS
from .models import Digest, ExpiryNotice, RenewalRequest
from .reminders import EXPIRY_REMINDER_EMAIL
from .renewal_requests import RENEWAL_REQUEST_EMAIL

# The digest keeps its moments as ISO text; the templates show them with |when and |day.
MOMENTS = ("ends_at", "new_ends_at", "ended_at", "last_sync_at", "placed_at", "activated_at")


def _with_moments(content: dict[str, Any]) -> dict[str, Any]:
    def item(entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry
        return {
            key: (parse_datetime(value) if key in MOMENTS and isinstance(value, str) else value)
            for key, value in entry.items()
        }

    return {
        key: [item(entry) for entry in value] if isinstance(value, list) else value
        for key, value in content.items()
    }


@register(DIGEST_EMAIL)
def render_digest_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    digest = Digest.objects.select_related("partner").filter(pk=row.object_id).first()
    if digest is None:
        return None
    content = digest.content
    counts = content.get("counts", {})
    dashboard_url = settings.SITE_URL + reverse("lifecycle:renewals")
    context = {
        "digest": digest,
        "c": _with_moments(content),
        # Per section, the items counted but not listed (the digest lists the most urgent).
        "unlisted": {
            section: counts.get(section, 0) - len(content.get(section, [])) for section in SECTIONS
        },
        "dashboard_url": dashboard_url,
        "csv_url": f"{dashboard_url}?format=csv",
        "orders_url": settings.SITE_URL + reverse("orders:list"),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"Cloud Licensing: your daily summary for {digest.day:%d %b %Y}",
        body=render_to_string("emails/digest.txt", context),
        to=row.to,
    )
    message.attach_alternative(render_to_string("emails/digest.html", context), "text/html")
    return message


@dataclass(frozen=True)
class ReminderLine:
    license: License
    what: str
    ends_at: datetime | None
    days_left: int


@register(EXPIRY_REMINDER_EMAIL)
def render_expiry_reminder_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    notice = (
        ExpiryNotice.objects.select_related("customer__smart_account")
        .filter(pk=row.object_id)
        .first()
    )
    if notice is None:
        return None
    account = notice.customer.smart_account
    listed = notice.content.get("lines", [])
    licenses = License.objects.select_related("product").in_bulk(
        [line["license"] for line in listed]
    )
    lines = [
        ReminderLine(
            license=licenses[UUID(line["license"])],
            what=line["what"],
            ends_at=parse_datetime(line["ends_at"]),
            days_left=line["days_left"],
        )
        for line in listed
        if UUID(line["license"]) in licenses  # a license deleted since is not listed
    ]
    context = {
        "notice": notice,
        "customer": notice.customer,
        "lines": lines,
        "more": notice.content.get("more", 0),
        "partners": partners_of(notice.customer),
        "licenses_url": settings.SITE_URL
        + reverse("smartaccounts:account", kwargs={"account_id": account.pk}),
        "settings_url": settings.SITE_URL + reverse("lifecycle:notifications"),
    }
    message = EmailMultiAlternatives(
        subject=f"Cloud Licensing: care or subscriptions of {notice.customer.name} end soon",
        body=render_to_string("emails/expiry_reminder.txt", context),
        to=row.to,
    )
    message.attach_alternative(
        render_to_string("emails/expiry_reminder.html", context), "text/html"
    )
    return message


@register(RENEWAL_REQUEST_EMAIL)
def render_renewal_request_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    request = (
        RenewalRequest.objects.select_related(
            "partner", "requested_by", "license__product", "license__account__organization"
        )
        .filter(pk=row.object_id)
        .first()
    )
    if request is None:
        return None
    lic = request.license
    asked_by = request.requested_by
    context = {
        "request": request,
        "lic": lic,
        "customer": lic.account.organization,
        "what": "term" if request.period_ends_at == lic.ends_at else "care",
        "asked_by": (asked_by.full_name or asked_by.email) if asked_by else "",
        "dashboard_url": settings.SITE_URL + reverse("lifecycle:renewals"),
    }
    message = EmailMultiAlternatives(
        subject=f"Cloud Licensing: {lic.account.organization.name} asks you to renew "
        f"{lic.product.name}",
        body=render_to_string("emails/renewal_request.txt", context),
        to=row.to,
    )
    message.attach_alternative(
        render_to_string("emails/renewal_request.html", context), "text/html"
    )
    return message
