"""Who may do what: one function per permission rule, named ``access_*``.

A portal view asks it before acting and the service asks it again (an admin action, a task or
a command reaches the service without the view). Each raises ``AccessDenied`` (the domain's
``permission_denied``: a 403 page in the portal, a 403 problem in the API). The ``can_*``
answers are for pages that show or hide a control."""

from kernel.errors import AccessDenied

from .actors import Actor
from .models import Organization


def access_write(actor: Actor, detail: str = "Your role may only read.") -> None:
    """Admins and members change things; viewers read only. A partner system's key acts as a
    member, the system as an admin (`Actor.role`)."""
    if not actor.can_write:
        raise AccessDenied(detail)


def can_manage_accounts(actor: Actor) -> bool:
    """Whether the actor may change what is in the accounts it sees (servers, assignments):
    writers of a customer or a reseller, and the system. Distributors watch their resellers'
    customers but do not manage them."""
    if actor.is_system:
        return True
    org = actor.organization
    return (
        org is not None
        and org.kind in (Organization.Kind.CUSTOMER, Organization.Kind.RESELLER)
        and actor.can_write
    )


def access_manage_accounts(actor: Actor) -> None:
    if not can_manage_accounts(actor):
        raise AccessDenied("Your role may not change servers or capacity.")


def access_org_admin(actor: Actor, organization: Organization | None) -> Organization:
    """People of an organization (invitations, roles, deactivation) are managed by its admins
    and by the system; nobody manages people of no organization. Returns the organization."""
    if organization is None or not (
        actor.is_system or (actor.is_org_admin and actor.organization == organization)
    ):
        raise AccessDenied("Only an admin of the organization may do this.")
    return organization


def access_api_keys(actor: Actor, organization: Organization | None) -> Organization:
    """An organization's API keys are created and revoked by its admins in the portal, and by
    the system (``manage.py create_api_key``); not by an API key or anyone else.
    Returns the organization."""
    return access_org_admin(actor, organization)


def access_auto_renew(actor: Actor) -> None:
    """The reseller serving the customer decides a subscription's automatic renewal
    (distributors watch, customers use)."""
    if actor.is_system:
        return
    org = actor.organization
    if not (org is not None and org.kind == Organization.Kind.RESELLER and actor.can_write):
        raise AccessDenied("Only the customer's reseller may change this.")
