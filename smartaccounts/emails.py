"""The invitation e-mail: a link to set a first password, made with Django's token generator."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from notifications.models import OutboundEmail
from notifications.renderers import register

from .models import User

INVITATION_EMAIL = "invitation"
PASSWORD_RESET_EMAIL = "password_reset"


@register(INVITATION_EMAIL)
def render_invitation_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    user = User.objects.select_related("organization").filter(pk=row.object_id).first()
    if user is None or not user.is_active or user.has_usable_password():
        return None  # gone, deactivated, or already signed up: nothing to invite to
    path = reverse(
        "smartaccounts:invitation",
        args=[
            urlsafe_base64_encode(force_bytes(user.pk)),
            default_token_generator.make_token(user),
        ],
    )
    context = {
        "user": user,
        "organization": user.organization,
        "invitation_url": settings.SITE_URL + path,
        "login_url": settings.SITE_URL + reverse("login"),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"You are invited to the Cloud Licensing portal ({user.organization})",
        body=render_to_string("emails/invitation.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("emails/invitation.html", context), "text/html")
    return message


@register(PASSWORD_RESET_EMAIL)
def render_password_reset_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    user = User.objects.filter(pk=row.object_id, is_active=True).first()
    if user is None:
        return None
    context = {
        "email": user.email,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
        "site_url": settings.SITE_URL,
    }
    subject = render_to_string("registration/password_reset_subject.txt", context).strip()
    body = render_to_string("registration/password_reset_email.html", context)
    return EmailMultiAlternatives(subject=subject, body=body, to=[user.email])
