import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.tasks import enqueue_email

from .access import access_api_keys, access_auto_renew, access_org_admin
from .actors import Actor
from .audit import record_event
from .errors import AccountError
from .models import (
    ApiKey,
    License,
    LicenseRenewal,
    Organization,
    PartnerLink,
    Product,
    SmartAccount,
    User,
)
from .secrets import hash_secret, new_secret
from .selectors import INVITATION_CANCELLED, INVITED, has_signed_up
from .terms import add_months
from .validators import CONTROL_CHARACTERS_MESSAGE, has_control_characters

API_KEY_PREFIX = "clp_"
RENEWAL_GRACE = timedelta(days=7)
API_KEY_VISIBLE_CHARS = 12  # "clp_" and 8 random characters, shown in lists

INVITATION_EMAIL = "invitation"
# To someone whose address already has an account, when another organization tries to invite
# it: they are told, the inviter is not (SECURITY.md S27).
INVITATION_ELSEWHERE_EMAIL = "invitation_elsewhere"
# Why someone is invited: a colleague asked them onto the team, or a partner's order brought
# their organization its first licenses.
INVITED_TO_TEAM = "team"
INVITED_FOR_LICENSES = "licenses"
# Marks an invitation event whose address has an account in another organization. Data keys
# starting with "_" are for the vendor's audit trail only: the account history and its CSV
# never show them (lifecycle/history.py), so the inviter reads the same event either way (S27).
ELSEWHERE_MARK = "_elsewhere"


def create_api_key(*, organization: Organization, name: str, actor: Actor) -> tuple[ApiKey, str]:
    """Create a key for `organization`. Returns the row and the raw key, shown once."""
    access_api_keys(actor, organization)
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
    access_api_keys(actor, api_key.organization)
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
    *,
    organization: Organization,
    email: str,
    role: str,
    actor: Actor,
    full_name: str = "",
    licenses_from: Organization | None = None,
) -> User:
    """Create a user without a password and e-mail them a link to set one.

    The e-mail says who invited them, to which organization and with which role; with
    `licenses_from` (the partner whose order brought a customer its first licenses) it says
    the licenses are waiting instead of naming a colleague.
    """
    email = email.strip().lower()
    _refuse_header_breaks(email=email, full_name=full_name)
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise AccountError(
                "validation_error",
                "A user with this e-mail address already exists.",
                errors={"email": ["A user with this e-mail address already exists."]},
            )
        return _create_invited_user(
            organization=organization,
            email=email,
            role=role,
            actor=actor,
            full_name=full_name,
            licenses_from=licenses_from,
        )


def invite_contact(
    *, organization: Organization, email: str, actor: Actor, licenses_from: Organization
) -> None:
    """Invite a customer's contact as its first admin when its first licenses arrive. An
    address with an account elsewhere is answered as a new one (S27): the same event in the
    customer's history, and its owner told by e-mail instead; that account is not touched."""
    email = email.strip().lower()
    _refuse_header_breaks(email=email)
    with transaction.atomic():
        existing = User.objects.select_for_update().filter(email__iexact=email).first()
        if existing is None:
            _create_invited_user(
                organization=organization,
                email=email,
                role=User.Role.ADMIN,
                actor=actor,
                full_name="",
                licenses_from=licenses_from,
            )
        elif existing.organization_id != organization.pk:
            _tell_invited_elsewhere(
                user=existing,
                email=email,
                organization=organization,
                role=User.Role.ADMIN,
                actor=actor,
            )


def _create_invited_user(
    *,
    organization: Organization,
    email: str,
    role: str,
    actor: Actor,
    full_name: str,
    licenses_from: Organization | None,
) -> User:
    """Call inside a transaction, with `email` normalised, checked and known to be free."""
    user = User(email=email, organization=organization, role=role, full_name=full_name)
    user.set_unusable_password()
    user.save()
    _send_invitation(user=user, actor=actor, licenses_from=licenses_from)
    return user


def _send_invitation(
    *, user: User, actor: Actor, licenses_from: Organization | None, again: bool = False
) -> None:
    """The invitation e-mail and its event: {"email", "role"}, exactly what an invitation of
    an address with an account elsewhere records too (S27); `again` marks a re-send."""
    enqueue_email(
        kind=INVITATION_EMAIL,
        object_id=str(user.pk),
        to=[user.email],
        context=_invitation_context(actor, licenses_from),
    )
    record_event(
        actor=actor,
        action=INVITED,
        obj=user,
        account=_invitation_account(user.organization),
        data={"email": user.email, "role": user.role, **({"again": True} if again else {})},
    )


def _invitation_account(organization: Organization | None) -> SmartAccount | None:
    """Where an invitation into `organization` is recorded: a customer's Smart Account, so its
    history shows it; a partner has none."""
    return getattr(organization, "smart_account", None)


def resend_invitation(
    *, user: User, actor: Actor, licenses_from: Organization | None = None
) -> bool:
    """Invite again someone who has not chosen a password yet. False when there is nobody to
    invite any more (signed up or deactivated)."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if not user.is_active or user.has_usable_password():
            return False
        _send_invitation(user=user, actor=actor, licenses_from=licenses_from, again=True)
    return True


def _invitation_context(actor: Actor, licenses_from: Organization | None) -> dict[str, str]:
    """What the invitation says about where it comes from (stored with the outbox row)."""
    if licenses_from is not None:
        return {"reason": INVITED_FOR_LICENSES, "partner": licenses_from.name}
    if actor.user is not None:
        who = actor.user.email
        if actor.user.full_name:
            who = f"{actor.user.full_name} ({actor.user.email})"
    else:
        who = actor.label
    return {
        "reason": INVITED_TO_TEAM,
        "inviter": who,
        "inviter_organization": actor.organization.name if actor.organization else "",
    }


def _keep_an_admin(user: User) -> None:
    """An organization never loses its last active admin: nobody could manage it any more."""
    others = User.objects.filter(
        organization=user.organization, role=User.Role.ADMIN, is_active=True
    ).exclude(pk=user.pk)
    if user.role == User.Role.ADMIN and user.is_active and not others.exists():
        raise AccountError("validation_error", "The organization needs at least one active admin.")


def _refuse_header_breaks(**texts: str) -> None:
    """An address and a name reach e-mail headers (the recipient, the subject of invitations
    the person sends later): no line break or other control character (S24)."""
    errors = {
        name: [CONTROL_CHARACTERS_MESSAGE]
        for name, value in texts.items()
        if has_control_characters(value)
    }
    if errors:
        raise AccountError("validation_error", CONTROL_CHARACTERS_MESSAGE, errors=errors)


def invite_member(*, email: str, role: str, actor: Actor, full_name: str = "") -> str:
    """An organization admin invites a colleague by e-mail. Returns the address invited.

    An address that already has an account in another organization is answered exactly as a
    new one (SECURITY.md S27): the same work, the same answer, the same event, no change to
    that account. Its owner is told by e-mail instead, and may ask the inviter to use another
    address. Inviting again an address invited before (with its invitation cancelled or not,
    perhaps with another role) sends it again, either way. Only someone who has joined the
    admin's own team is no secret to the admin: that is said plainly.
    """
    organization = access_org_admin(actor, actor.organization)
    if role not in User.Role.values:
        raise AccountError("validation_error", "Unknown role.", errors={"role": ["Unknown role."]})
    email = email.strip().lower()
    _refuse_header_breaks(email=email, full_name=full_name)
    with transaction.atomic():
        existing = User.objects.select_for_update().filter(email__iexact=email).first()
        if existing is None:
            _create_invited_user(
                organization=organization,
                email=email,
                role=role,
                actor=actor,
                full_name=full_name,
                licenses_from=None,
            )
        elif existing.organization_id != organization.pk:
            _tell_invited_elsewhere(
                user=existing, email=email, organization=organization, role=role, actor=actor
            )
        elif has_signed_up(existing):
            message = f"{email} is already in your team."
            raise AccountError("validation_error", message, errors={"email": [message]})
        else:
            # Invited before and not signed up: back on (a cancelled invitation), the role asked
            # for now, a new e-mail.
            existing.role = role
            existing.is_active = True
            existing.full_name = full_name or existing.full_name
            existing.save(update_fields=["role", "is_active", "full_name"])
            _send_invitation(user=existing, actor=actor, licenses_from=None)
    return email


def _tell_invited_elsewhere(
    *, user: User, email: str, organization: Organization, role: str, actor: Actor
) -> None:
    """The other half of an invitation to an address with an account elsewhere: an e-mail to
    that address (through the outbox, like an invitation) and the event an invitation records,
    with the same account and details (the address as typed, normalised), marked for the
    vendor's audit trail only. The account is not touched."""
    enqueue_email(
        kind=INVITATION_ELSEWHERE_EMAIL,
        object_id=str(user.pk),
        to=[user.email],
        context={**_invitation_context(actor, None), "role": role},
    )
    record_event(
        actor=actor,
        action=INVITED,
        obj=user,
        account=_invitation_account(organization),
        data={"email": email, "role": role, ELSEWHERE_MARK: True},
    )


def cancel_invitation(*, email: str, actor: Actor) -> bool:
    """Withdraw the actor's organization's invitation of `email`. False when the person has
    signed up meanwhile (they are a member now: deactivate them instead).

    The same for an address with an account elsewhere (its invitation just ends; that account
    is not touched) as for a new one, whose pending user is deactivated with a fresh unusable
    password, so that the links already sent no longer work (S27).
    """
    organization = access_org_admin(actor, actor.organization)
    email = email.strip().lower()
    data: dict[str, object] = {"email": email}
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email__iexact=email).first()
        if user is not None and user.organization_id == organization.pk:
            if has_signed_up(user):
                return False
            user.is_active = False
            user.set_unusable_password()
            user.save(update_fields=["is_active", "password"])
        elif user is not None:
            data[ELSEWHERE_MARK] = True
        record_event(
            actor=actor,
            action=INVITATION_CANCELLED,
            obj=user,
            account=_invitation_account(organization),
            data=data,
        )
    return True


def change_role(*, user: User, role: str, actor: Actor) -> User:
    access_org_admin(actor, user.organization)
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
    access_org_admin(actor, user.organization)
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


# --- License lifecycle ------------------------------------------------------------------------


def renew_subscription(
    *, license_id: uuid.UUID | str, now: datetime, actor: Actor
) -> LicenseRenewal | None:
    """Extend one subscription by its renewal term if it reached its end and renews itself.

    Returns the renewal, or None when there was nothing to do (not due, renewal off, or this
    period renewed already — by another run of the job or by a renewal order).
    """
    with transaction.atomic():
        lic = (
            License.objects.select_for_update()
            .select_related("account")
            .filter(
                pk=license_id,
                kind=License.Kind.SUBSCRIPTION,
                auto_renew=True,
                state__in=[License.State.ACTIVE, License.State.EXPIRED],
                ends_at__lte=now,
                # Catch up on days the job did not run, but never revive a long-lapsed term.
                ends_at__gt=now - RENEWAL_GRACE,
            )
            .first()
        )
        if lic is None:
            return None
        period = lic.ends_at
        assert period is not None  # selected by ends_at__lte
        new_end = add_months(period, lic.renewal_months)
        try:
            with transaction.atomic():
                renewal = LicenseRenewal.objects.create(
                    license=lic,
                    period_ends_at=period,
                    new_ends_at=new_end,
                    source=LicenseRenewal.Source.AUTOMATIC,
                    created_at=now,
                )
        except IntegrityError:
            return None
        lic.ends_at = new_end
        # Care comes with a subscription: it runs at least as long as the term.
        if lic.care_ends_at is None or lic.care_ends_at < new_end:
            lic.care_ends_at = new_end
        lic.state = License.State.ACTIVE
        lic.save(update_fields=["ends_at", "care_ends_at", "state"])
        record_event(
            actor=actor,
            action="license.renewed",
            obj=lic,
            account=lic.account,
            data={
                "source": "automatic",
                "from": period.isoformat(),
                "ends_at": new_end.isoformat(),
            },
        )
    return renewal


def expire_license(*, license_id: uuid.UUID | str, now: datetime, actor: Actor) -> bool:
    """Mark an active subscription whose term has ended as expired. True if it changed."""
    with transaction.atomic():
        changed = License.objects.filter(
            pk=license_id, state=License.State.ACTIVE, ends_at__lte=now
        ).update(state=License.State.EXPIRED)
        if changed:
            lic = License.objects.select_related("account").get(pk=license_id)
            assert lic.ends_at is not None  # updated by ends_at__lte, in this transaction
            record_event(
                actor=actor,
                action="license.expired",
                obj=lic,
                account=lic.account,
                data={"product": lic.product_id, "ended_at": lic.ends_at.isoformat()},
            )
    return bool(changed)


def set_auto_renew(*, license: License, enabled: bool, actor: Actor) -> License:
    """A partner turns automatic renewal of a subscription on or off."""
    access_auto_renew(actor)
    if license.kind != License.Kind.SUBSCRIPTION:
        raise AccountError("validation_error", "Only subscriptions renew automatically.")
    with transaction.atomic():
        License.objects.filter(pk=license.pk).update(auto_renew=enabled)
        license.auto_renew = enabled
        record_event(
            actor=actor,
            action="license.auto_renew_changed",
            obj=license,
            account=license.account,
            data={"auto_renew": enabled},
        )
    return license


def issue_evaluation(
    *, account: SmartAccount, product: Product, quantity: int, actor: Actor, days: int = 30
) -> License:
    """A time-limited evaluation: a subscription that expires on its own."""
    if quantity < 1:
        raise AccountError("validation_error", "quantity: at least 1.")
    if not product.allows_subscription:
        raise AccountError(
            "validation_error", f"{product.code} is not sold as a subscription, nor evaluated."
        )
    now = timezone.now()
    end = now + timedelta(days=days)
    with transaction.atomic():
        lic = License.objects.create(
            account=account,
            product=product,
            kind=License.Kind.SUBSCRIPTION,
            quantity=quantity,
            state=License.State.ACTIVE,
            starts_at=now,
            ends_at=end,
            care_ends_at=end,
            auto_renew=False,
            source="evaluation",
        )
        record_event(
            actor=actor,
            action="license.evaluation_issued",
            obj=lic,
            account=account,
            data={"product": product.code, "quantity": quantity, "ends_at": end.isoformat()},
        )
    return lic
