"""The partner's daily digest e-mail."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from notifications.models import OutboundEmail
from notifications.renderers import register

from .models import Digest
from .services import DIGEST_EMAIL


@register(DIGEST_EMAIL)
def render_digest_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    digest = Digest.objects.select_related("partner").filter(pk=row.object_id).first()
    if digest is None:
        return None
    context = {
        "digest": digest,
        "c": digest.content,
        "dashboard_url": settings.SITE_URL + reverse("lifecycle:renewals"),
        "orders_url": settings.SITE_URL + reverse("orders:list"),
    }
    message = EmailMultiAlternatives(
        subject=f"Cloud Licensing: your daily summary for {digest.day:%d %b %Y}",
        body=render_to_string("emails/digest.txt", context),
        to=row.to,
    )
    message.attach_alternative(render_to_string("emails/digest.html", context), "text/html")
    return message
