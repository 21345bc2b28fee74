"""`manage.py demo_data`: the catalog, organizations, users and orders of the demo."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import License, Organization, PartnerLink, Product, User

pytestmark = pytest.mark.django_db

USERS = {
    "vendor@example.com": "Cloud Licensing Vendor",
    "distributor@example.com": "Demo Distributor",
    "reseller@example.com": "Demo Reseller",
    "second@example.com": "Second Reseller",
    "customer@example.com": "Demo Customer",
}
MODELS = (Organization, User, Order, License, Product, OutboundEmail, PartnerLink)


def load() -> str:
    out = StringIO()
    call_command("demo_data", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_running_twice_adds_nothing_the_second_time():
    load()
    first = counts()

    load()

    assert counts() == first
    assert first["Order"] >= 4 and first["License"] >= 8
    # The five demo users, and the one invited when Second Customer's order was unlocked.
    assert first["User"] == 6
    invited = User.objects.exclude(email__in=USERS).get()
    assert invited.organization.name == "Second Customer"
    assert not invited.has_usable_password()
    assert OutboundEmail.objects.filter(kind="invitation").count() == 1


def test_the_catalog_has_the_products_with_their_kinds():
    load()

    assert Product.objects.count() >= 6
    for code in ("CALL_RECORDING", "ATTENDANT_CONSOLE"):
        product = Product.objects.get(code=code)
        assert product.allows_perpetual and product.allows_subscription
        assert product.is_active


def test_the_named_organizations_and_their_relations():
    load()

    def org(name: str, kind: str) -> Organization:
        return Organization.objects.get(name=name, kind=kind)

    distributor = org("Demo Distributor", "distributor")
    reseller = org("Demo Reseller", "reseller")
    second_reseller = org("Second Reseller", "reseller")
    customer = org("Demo Customer", "customer")
    second_customer = org("Second Customer", "customer")
    org("Cloud Licensing Vendor", "vendor")

    assert list(distributor.resellers.all()) == [reseller]
    assert PartnerLink.objects.filter(reseller=reseller, customer=customer).exists()
    assert PartnerLink.objects.filter(reseller=second_reseller, customer=second_customer).exists()
    assert not PartnerLink.objects.filter(reseller=second_reseller, customer=customer).exists()
    active = License.objects.filter(account=customer.smart_account, state="active")
    assert active.count() >= 1
    assert License.objects.filter(account=second_customer.smart_account, state="active").exists()
    # Locked orders are left for the demo of the unlock link.
    assert Order.objects.filter(customer=customer, state="locked").exists()


def test_the_five_users_log_in_with_the_demo_password():
    output = load()

    for email, org_name in USERS.items():
        assert f"{email} / demo1234" in output
        user = User.objects.get(email=email)
        assert user.organization.name == org_name
        assert user.role == User.Role.ADMIN
        assert Client().login(username=email, password="demo1234"), email
        assert not Client().login(username=email, password="wrong-password"), email
    assert User.objects.get(email="vendor@example.com").is_staff
    assert not User.objects.get(email="reseller@example.com").is_staff


def test_a_demo_user_sees_the_demo_orders_in_the_portal():
    load()
    client = Client()
    client.force_login(User.objects.get(email="reseller@example.com"))

    page = client.get("/orders/").content.decode()

    assert "DEMO-1001" in page and "DIST-2001" in page
    assert "SR-3001" not in page
