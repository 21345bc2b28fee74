"""The permission rules, one `access_*` function each (smartaccounts/access.py, orders/access.py):
who each lets through and whom it refuses, and that the services ask them again below the
views (an admin action, a task or a command reaches a service without a view)."""

import pytest
from django.core.exceptions import PermissionDenied

from kernel.errors import AccessDenied
from orders.access import access_release_order
from orders.errors import OrderError
from orders.models import Order
from smartaccounts import services
from smartaccounts.access import (
    access_api_keys,
    access_auto_renew,
    access_manage_accounts,
    access_org_admin,
    access_write,
    can_manage_accounts,
)
from smartaccounts.actors import Actor
from smartaccounts.models import ApiKey, License, Organization, User
from tokens import services as tokens_services

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
NOBODY = Actor.anonymous("an unlock link")


def as_user(cast, who: str) -> Actor:
    return Actor.for_user(getattr(cast, who))


def key_actor(org: Organization) -> Actor:
    api_key, _ = services.create_api_key(organization=org, name="ERP", actor=SYSTEM)
    return Actor.for_api_key(api_key)


def refuses(check, *args) -> bool:
    try:
        check(*args)
    except AccessDenied as denied:
        assert denied.code == "permission_denied" and denied.status == 403
        assert isinstance(denied, PermissionDenied)  # a portal view answers it with 403
        return True
    return False


# --- Viewers read only -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice_admin", "alice_member", "carol_admin"])
def test_writers_may_write(cast, who):
    assert not refuses(access_write, as_user(cast, who))


def test_viewers_and_link_holders_may_not_write(cast):
    assert refuses(access_write, as_user(cast, "alice_viewer"))
    assert refuses(access_write, as_user(cast, "carol_viewer"))
    assert refuses(access_write, NOBODY)


def test_a_partner_systems_key_and_the_system_write(cast):
    assert not refuses(access_write, key_actor(cast.alice_reseller))
    assert not refuses(access_write, SYSTEM)


# --- Managing the accounts' servers and capacity -----------------------------------------------


@pytest.mark.parametrize("who", ["alice_admin", "alice_member", "carol_admin"])
def test_customers_and_resellers_writers_manage_accounts(cast, who):
    actor = as_user(cast, who)
    assert can_manage_accounts(actor)
    assert not refuses(access_manage_accounts, actor)


@pytest.mark.parametrize(
    "who",
    ["alice_viewer", "carol_viewer", "distributor_admin", "vendor_staff"],
)
def test_viewers_distributors_and_vendor_staff_do_not_manage_accounts(cast, who):
    actor = as_user(cast, who)
    assert not can_manage_accounts(actor)
    assert refuses(access_manage_accounts, actor)


def test_the_system_manages_accounts_and_a_link_holder_does_not(cast):
    assert not refuses(access_manage_accounts, SYSTEM)
    assert refuses(access_manage_accounts, NOBODY)


# --- People of an organization -----------------------------------------------------------------


def test_an_admin_manages_the_people_of_its_own_organization_only(cast):
    admin = as_user(cast, "alice_admin")
    assert access_org_admin(admin, cast.alice_reseller) == cast.alice_reseller
    assert refuses(access_org_admin, admin, cast.bob_reseller)
    assert refuses(access_org_admin, admin, cast.carol_customer)


@pytest.mark.parametrize("who", ["alice_member", "alice_viewer"])
def test_members_and_viewers_do_not_manage_people(cast, who):
    assert refuses(access_org_admin, as_user(cast, who), cast.alice_reseller)


def test_a_key_and_a_link_holder_do_not_manage_people_and_the_system_does(cast):
    assert refuses(access_org_admin, key_actor(cast.alice_reseller), cast.alice_reseller)
    assert refuses(access_org_admin, NOBODY, cast.alice_reseller)
    assert access_org_admin(SYSTEM, cast.alice_reseller) == cast.alice_reseller


def test_nobody_manages_the_people_of_no_organization(cast):
    assert refuses(access_org_admin, SYSTEM, None)
    assert refuses(access_org_admin, as_user(cast, "alice_admin"), None)


# --- API keys: the organization's admins in the portal, and the system (manage.py) --------------


def test_api_keys_are_for_the_organizations_admins_and_the_system(cast):
    assert access_api_keys(as_user(cast, "alice_admin"), cast.alice_reseller)
    assert access_api_keys(SYSTEM, cast.alice_reseller)
    assert refuses(access_api_keys, as_user(cast, "alice_admin"), cast.bob_reseller)
    assert refuses(access_api_keys, as_user(cast, "alice_member"), cast.alice_reseller)
    assert refuses(access_api_keys, as_user(cast, "alice_viewer"), cast.alice_reseller)


def test_an_api_key_creates_and_revokes_no_key_even_for_its_own_organization(cast):
    """One meaning everywhere: a partner system's key is a member, not an admin."""
    actor = key_actor(cast.alice_reseller)
    existing = ApiKey.objects.get()

    assert refuses(access_api_keys, actor, cast.alice_reseller)
    with pytest.raises(AccessDenied):
        services.create_api_key(organization=cast.alice_reseller, name="More", actor=actor)
    with pytest.raises(AccessDenied):
        services.revoke_api_key(api_key=existing, actor=actor)
    with pytest.raises(AccessDenied):
        services.create_api_key(organization=cast.alice_reseller, name="More", actor=NOBODY)

    existing.refresh_from_db()
    assert ApiKey.objects.count() == 1 and existing.revoked_at is None


# --- A subscription's automatic renewal -------------------------------------------------------


@pytest.mark.parametrize("who", ["alice_admin", "alice_member"])
def test_the_resellers_writers_decide_automatic_renewal(cast, who):
    assert not refuses(access_auto_renew, as_user(cast, who))


@pytest.mark.parametrize(
    "who", ["alice_viewer", "distributor_admin", "carol_admin", "vendor_staff"]
)
def test_nobody_else_decides_automatic_renewal(cast, who):
    assert refuses(access_auto_renew, as_user(cast, who))


# --- Releasing an order ------------------------------------------------------------------------


def test_only_the_holders_writers_release_an_order(cast):
    order = Order(placed_by=cast.alice_reseller)

    access_release_order(as_user(cast, "alice_admin"), order)
    access_release_order(as_user(cast, "alice_member"), order)
    access_release_order(key_actor(cast.alice_reseller), order)
    access_release_order(as_user(cast, "vendor_staff"), order)
    access_release_order(SYSTEM, order)
    assert refuses(access_release_order, as_user(cast, "alice_viewer"), order)
    for actor in (as_user(cast, "bob_admin"), as_user(cast, "distributor_admin"), NOBODY):
        with pytest.raises(OrderError) as refused:
            access_release_order(actor, order)
        assert refused.value.code == "not_found"  # as if it did not exist


# --- The services ask again -------------------------------------------------------------------


def test_the_services_refuse_what_the_views_refuse(cast):
    member = as_user(cast, "alice_member")
    viewer = as_user(cast, "alice_viewer")

    with pytest.raises(AccessDenied):
        services.invite_member(email="new@alice.example", role=User.Role.MEMBER, actor=member)
    with pytest.raises(AccessDenied):
        services.change_role(user=cast.alice_viewer, role=User.Role.ADMIN, actor=member)
    with pytest.raises(AccessDenied):
        services.deactivate_user(user=cast.alice_viewer, actor=member)
    with pytest.raises(AccessDenied):
        services.cancel_invitation(email="new@alice.example", actor=member)
    lic = License(kind=License.Kind.SUBSCRIPTION)
    with pytest.raises(AccessDenied):
        services.set_auto_renew(license=lic, enabled=True, actor=viewer)

    cast.alice_viewer.refresh_from_db()
    assert cast.alice_viewer.role == User.Role.VIEWER and cast.alice_viewer.is_active
    assert not User.objects.filter(email="new@alice.example").exists()


def test_the_server_services_refuse_a_distributor(cast):
    account = cast.carol_customer.smart_account
    with pytest.raises(AccessDenied):
        tokens_services.create_server(
            account=account,
            name="PBX",
            purpose="production",
            actor=as_user(cast, "distributor_admin"),
        )
    assert not account.servers.exists()
