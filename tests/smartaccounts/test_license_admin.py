"""The back office's license form: lowering a quantity below what servers hold is a form
error naming the servers, not a 500; nothing changes. Down to exactly what is held, or up,
saves as before."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License
from tokens import services

from ..factories import LicenseFactory, ServerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(cast) -> License:
    """Carol's 10 channels of Call Recording, 6 held by two servers."""
    account = cast.carol_customer.smart_account
    lic = LicenseFactory(account=account, product=cast.recording, quantity=10, source="PO-9")
    actor = Actor.system("tests")
    for name, quantity in (("PBX-Rome", 4), ("PBX-Milan", 2)):
        server = ServerFactory(account=account, name=name)
        services.assign_capacity(
            server=server, product=cast.recording, quantity=quantity, actor=actor
        )
    lic.refresh_from_db()
    assert lic.assigned == 6
    return lic


def change_form(lic: License) -> dict[str, str]:
    """What the admin's change form posts back for `lic` unchanged."""

    def split(name: str) -> dict[str, str]:
        moment = getattr(lic, name)
        if moment is None:
            return {f"{name}_0": "", f"{name}_1": ""}
        moment = timezone.localtime(moment)
        return {f"{name}_0": f"{moment:%Y-%m-%d}", f"{name}_1": f"{moment:%H:%M:%S}"}

    data = {
        "account": str(lic.account_id),
        "product": str(lic.product_id),
        "kind": lic.kind,
        "quantity": str(lic.quantity),
        "state": lic.state,
        "renewal_months": str(lic.renewal_months),
        "source": lic.source,
        **split("starts_at"),
        **split("ends_at"),
        **split("care_ends_at"),
    }
    if lic.auto_renew:
        data["auto_renew"] = "on"
    return data


@pytest.fixture
def staff(cast) -> Client:
    client = Client()
    client.force_login(cast.vendor_staff)
    return client


def test_lowering_below_what_servers_hold_is_a_form_error(staff, held):
    data = change_form(held)
    data["quantity"] = "5"
    before = AuditEvent.objects.count()

    response = staff.post(reverse("admin:smartaccounts_license_change", args=[held.pk]), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["quantity"], errors
    message = errors["quantity"][0]
    assert "6 channels of this license are assigned to servers" in message
    assert "PBX-Milan: 2, PBX-Rome: 4" in message
    assert "cannot go below 6" in message
    assert "6 channels of this license are assigned" in response.content.decode()
    held.refresh_from_db()
    assert (held.quantity, held.assigned) == (10, 6)
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("quantity", [6, 12])
def test_down_to_what_is_held_or_up_saves(staff, held, quantity):
    data = change_form(held)
    data["quantity"] = str(quantity)

    response = staff.post(reverse("admin:smartaccounts_license_change", args=[held.pk]), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    held.refresh_from_db()
    assert (held.quantity, held.assigned) == (quantity, 6)


def test_a_license_no_server_holds_may_go_down_to_one(staff, cast):
    lic = LicenseFactory(account=cast.carol_customer.smart_account, quantity=10)
    data = change_form(lic)
    data["quantity"] = "1"

    response = staff.post(reverse("admin:smartaccounts_license_change", args=[lic.pk]), data)

    assert response.status_code == 302
    lic.refresh_from_db()
    assert lic.quantity == 1


def test_adding_a_license_in_the_back_office_still_works(staff, cast):
    template = LicenseFactory.build(account=cast.carol_customer.smart_account, product=cast.console)
    data = change_form(template)
    data["quantity"] = "3"

    response = staff.post(reverse("admin:smartaccounts_license_add"), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert License.objects.get(product=cast.console).quantity == 3
