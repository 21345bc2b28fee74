"""A team's members and invitations: inviting colleagues and first contacts, roles, deactivation."""

from django.db import transaction

from notifications.tasks import enqueue_email

from .access import access_org_admin
from .actors import Actor
from .audit import record_event
from .errors import AccountError
from .models import Organization, SmartAccount, User
from .selectors import INVITATION_CANCELLED, INVITED, has_signed_up
from .validators import CONTROL_CHARACTERS_MESSAGE, has_control_characters

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
