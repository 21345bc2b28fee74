from django.db import transaction
from django.utils import timezone

from notifications.services import enqueue_email

from .actors import Actor
from .audit import record_event
from .errors import AccountError
from .models import ApiKey, Organization, PartnerLink, SmartAccount, User
from .secrets import hash_secret, new_secret

API_KEY_PREFIX = "clp_"
API_KEY_VISIBLE_CHARS = 12  # "clp_" and 8 random characters, shown in lists


def create_api_key(*, organization: Organization, name: str, actor: Actor) -> tuple[ApiKey, str]:
    """Create a key for `organization`. Returns the row and the raw key, shown once."""
    if actor.user is not None and not (actor.is_org_admin and actor.organization == organization):
        raise AccountError("permission_denied", "Only an admin of the organization may do this.")
    raw = new_secret(API_KEY_PREFIX)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            organization=organization,
            name=name.strip() or "API key",
            prefix=raw[:API_KEY_VISIBLE_CHARS],
            key_hash=hash_secret(raw),
            created_by=actor.user,
        )
        record_event(
            actor=actor,
            action="api_key.created",
            obj=api_key,
            data={"name": api_key.name, "prefix": api_key.prefix},
        )
    return api_key, raw


def revoke_api_key(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    if actor.user is not None and not (
        actor.is_org_admin and actor.organization == api_key.organization
    ):
        raise AccountError("permission_denied", "Only an admin of the organization may do this.")
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        api_key.refresh_from_db(fields=["revoked_at"])
        if updated:
            record_event(
                actor=actor, action="api_key.revoked", obj=api_key, data={"prefix": api_key.prefix}
            )
    return api_key


def create_customer(
    *,
    reseller: Organization,
    name: str,
    email: str,
    country: str = "",
    external_id: str = "",
    actor: Actor,
) -> Organization:
    """A new customer organization with its Smart Account, served by `reseller`."""
    with transaction.atomic():
        customer = Organization.objects.create(
            kind=Organization.Kind.CUSTOMER,
            name=name.strip(),
            email=email.strip().lower(),
            country=country.upper(),
        )
        account = SmartAccount.objects.create(organization=customer, name=customer.name)
        PartnerLink.objects.create(reseller=reseller, customer=customer, external_id=external_id)
        record_event(
            actor=actor,
            action="customer.created",
            obj=customer,
            account=account,
            data={"name": customer.name, "reseller": str(reseller.pk)},
        )
    return customer


def invite_user(
    *, organization: Organization, email: str, role: str, actor: Actor, full_name: str = ""
) -> User:
    """Create a user without a password and e-mail them a link to set one."""
    email = email.strip().lower()
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise AccountError(
                "validation_error",
                "A user with this e-mail address already exists.",
                errors={"email": ["A user with this e-mail address already exists."]},
            )
        user = User(email=email, organization=organization, role=role, full_name=full_name)
        user.set_unusable_password()
        user.save()
        enqueue_email(kind="invitation", object_id=str(user.pk), to=[user.email])
        record_event(
            actor=actor,
            action="user.invited",
            obj=user,
            account=getattr(organization, "smart_account", None),
            data={"email": user.email, "role": role},
        )
    return user
