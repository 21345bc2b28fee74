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


def _require_org_admin(actor: Actor, organization: Organization) -> None:
    if not actor.is_system and not (actor.is_org_admin and actor.organization == organization):
        raise AccountError("permission_denied", "Only an admin of the organization may do this.")


def _keep_an_admin(user: User) -> None:
    """An organization never loses its last active admin: nobody could manage it any more."""
    others = User.objects.filter(
        organization=user.organization, role=User.Role.ADMIN, is_active=True
    ).exclude(pk=user.pk)
    if user.role == User.Role.ADMIN and user.is_active and not others.exists():
        raise AccountError("validation_error", "The organization needs at least one active admin.")


def invite_member(*, email: str, role: str, actor: Actor, full_name: str = "") -> User:
    """An organization admin invites a colleague by e-mail."""
    if actor.organization is None:
        raise AccountError("permission_denied", "Only an admin of the organization may do this.")
    _require_org_admin(actor, actor.organization)
    if role not in User.Role.values:
        raise AccountError("validation_error", "Unknown role.", errors={"role": ["Unknown role."]})
    return invite_user(
        organization=actor.organization, email=email, role=role, actor=actor, full_name=full_name
    )


def change_role(*, user: User, role: str, actor: Actor) -> User:
    _require_org_admin(actor, user.organization)
    if role not in User.Role.values:
        raise AccountError("validation_error", "Unknown role.", errors={"role": ["Unknown role."]})
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        # Lock the organization's admins so two admins cannot demote each other at once.
        list(
            User.objects.select_for_update().filter(
                organization=user.organization, role=User.Role.ADMIN
            )
        )
        if role != User.Role.ADMIN:
            _keep_an_admin(user)
        previous = user.role
        user.role = role
        user.save(update_fields=["role"])
        record_event(
            actor=actor,
            action="user.role_changed",
            obj=user,
            data={"email": user.email, "from": previous, "to": role},
        )
    return user


def deactivate_user(*, user: User, actor: Actor) -> User:
    _require_org_admin(actor, user.organization)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        list(
            User.objects.select_for_update().filter(
                organization=user.organization, role=User.Role.ADMIN
            )
        )
        if not user.is_active:
            return user
        _keep_an_admin(user)
        user.is_active = False
        user.save(update_fields=["is_active"])
        record_event(actor=actor, action="user.deactivated", obj=user, data={"email": user.email})
    return user
