"""The invitation e-mail: a link to set a first password, made with Django's token generator."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from notifications.models import OutboundEmail
from notifications.renderers import register
from notifications.services import token_generator_for

from .models import Organization, User
from .services import INVITATION_ELSEWHERE_EMAIL, INVITATION_EMAIL, INVITED_FOR_LICENSES

PASSWORD_RESET_EMAIL = "password_reset"


ROLE_PHRASES: dict[str, str] = {
    User.Role.ADMIN: "an administrator",
    User.Role.MEMBER: "a member",
    User.Role.VIEWER: "a viewer",
}
# What each role may do, in the invitation's words.
ROLE_POWERS: dict[tuple[str, bool], str] = {
    (User.Role.VIEWER, False): "see the licenses, servers and history, without changing them",
    (User.Role.VIEWER, True): "see your customers, their licenses, servers and orders, "
    "without changing them",
    (User.Role.MEMBER, False): "assign licenses to your AppSuite servers and activate them",
    (User.Role.MEMBER, True): "manage your customers' servers and capacity, and unlock orders",
    (User.Role.ADMIN, False): "assign licenses to your AppSuite servers, activate them, "
    "and invite your colleagues",
    (User.Role.ADMIN, True): "manage your customers' servers and capacity, unlock orders, "
    "invite colleagues and create API keys",
}


@register(INVITATION_EMAIL)
def render_invitation_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    user = User.objects.select_related("organization").filter(pk=row.object_id).first()
    if user is None or not user.is_active or user.has_usable_password():
        return None  # gone, deactivated, or already signed up: nothing to invite to
    path = reverse(
        "smartaccounts:invitation",
        args=[
            urlsafe_base64_encode(force_bytes(user.pk)),
            token_generator_for(row).make_token(user),
        ],
    )
    organization: Organization | None = user.organization
    is_partner = organization is not None and organization.is_partner
    for_licenses = row.context.get("reason") == INVITED_FOR_LICENSES
    context = {
        "user": user,
        "organization": organization,
        "role": ROLE_PHRASES.get(user.role, user.get_role_display().lower()),
        "powers": ROLE_POWERS.get((user.role, is_partner), ""),
        "for_licenses": for_licenses,
        "partner": row.context.get("partner", ""),
        "inviter": row.context.get("inviter", ""),
        "inviter_organization": row.context.get("inviter_organization", ""),
        "invitation_url": settings.SITE_URL + path,
        "login_url": settings.SITE_URL + reverse("login"),
        "site_url": settings.SITE_URL,
    }
    if for_licenses:
        subject = f"Licenses for {organization} are waiting in the Cloud Licensing portal"
    elif context["inviter"]:
        inviter = row.context.get("inviter", "").split(" (")[0]
        subject = f"{inviter} invited you to {organization} on the Cloud Licensing portal"
    else:
        subject = f"You are invited to {organization} on the Cloud Licensing portal"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/invitation.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("emails/invitation.html", context), "text/html")
    return message


@register(INVITATION_ELSEWHERE_EMAIL)
def render_invitation_elsewhere_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    """To someone with an account whom another organization tried to invite (S27): they learn
    of it, the inviter does not learn the account exists. No link: nothing to accept."""
    user = User.objects.filter(pk=row.object_id, is_active=True).first()
    if user is None:
        return None
    inviter = row.context.get("inviter", "")
    inviter_organization = row.context.get("inviter_organization", "")
    context = {
        "user": user,
        "inviter": inviter,
        "inviter_organization": inviter_organization,
        "role": ROLE_PHRASES.get(row.context.get("role", ""), "a member"),
        "login_url": settings.SITE_URL + reverse("login"),
        "site_url": settings.SITE_URL,
    }
    subject = (
        f"{inviter_organization or 'Someone'} tried to invite you to the Cloud Licensing portal"
    )
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/invitation_elsewhere.txt", context),
        to=[user.email],
    )
    message.attach_alternative(
        render_to_string("emails/invitation_elsewhere.html", context), "text/html"
    )
    return message


@register(PASSWORD_RESET_EMAIL)
def render_password_reset_email(row: OutboundEmail) -> EmailMultiAlternatives | None:
    user = User.objects.filter(pk=row.object_id, is_active=True).first()
    if user is None:
        return None
    context = {
        "email": user.email,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": token_generator_for(row).make_token(user),
        "site_url": settings.SITE_URL,
    }
    subject = render_to_string("registration/password_reset_subject.txt", context).strip()
    body = render_to_string("registration/password_reset_email.html", context)
    return EmailMultiAlternatives(subject=subject, body=body, to=[user.email])
