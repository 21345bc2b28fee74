"""A distributor hears about the licenses of the orders it placed (issue 9): their terms and care
ending, renewals and expiry, each threshold once; its reseller hears too, on its own."""

import pytest
from django.core import mail
from django.utils import timezone

from lifecycle.digests import send_partner_digests
from lifecycle.models import Digest, Reminder, ToldThrough
from orders.models import Order
from smartaccounts.models import License

from ..conftest import api_client_for
from ..orders.payloads import URL, order_body
from .conftest import at

pytestmark = pytest.mark.django_db

CAROL = {"name": "Carol Corp", "email": "it@carol.example"}


def place(api, reference: str, care_days: int, **extra) -> License:
    line = {
        "product": "CALL_RECORDING",
        "quantity": 40,
        "kind": "perpetual",
        "care_ends_at": at(days=care_days).isoformat(),
    }
    response = api.post(URL, order_body(reference, CAROL, lines=[line], **extra), format="json")
    assert response.status_code == 201, response.content
    order = Order.objects.get(reference=reference)
    api.post(f"{URL}/{order.pk}/unlock")
    return License.objects.get(order_lines__order=order)


def test_the_distributor_hears_about_licenses_from_its_orders_once_per_threshold(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    dist = api_client_for(cast.distributor)
    from_distributor = place(dist, "DIST-1", 85, reseller=str(cast.alice_reseller.pk))
    place(api_client_for(cast.alice_reseller), "ALICE-1", 50)  # the reseller's own order
    assert from_distributor.account == carol_account

    sent: dict[str, dict[int, list]] = {"Dist One": {}, "Alice Reseller": {}}
    for day in range(86):
        clock.move_to(at(days=day, hours=1))
        with django_capture_on_commit_callbacks(execute=True):
            send_partner_digests(now=timezone.now())
        for digest in Digest.objects.filter(day=at(days=day).date()):
            items = [(i["product"], i["threshold"]) for i in digest.content["terms_ending"]]
            if items:
                sent[digest.partner.name][day] = items

    assert sent["Dist One"] == {
        0: [("Call Recording", 90)],
        25: [("Call Recording", 60)],
        55: [("Call Recording", 30)],
        78: [("Call Recording", 7)],
    }
    # The reseller hears about both licenses, each threshold once.
    alice = [threshold for items in sent["Alice Reseller"].values() for _, threshold in items]
    assert sorted(alice) == sorted([90, 60, 30, 7] + [60, 30, 7])
    told_dist = ToldThrough.objects.filter(organization=cast.distributor)
    assert sorted(told.threshold for told in told_dist) == [0, 7, 30, 60, 90]
    assert not Reminder.objects.exists()
    to_distributor = [m for m in mail.outbox if m.to == ["orders@dist.example"]]
    assert to_distributor
    assert (
        "Carol Corp: Call Recording (40 channels, perpetual) — care ends" in to_distributor[0].body
    )


def test_a_distributor_never_hears_of_orders_another_placed(cast, carol_account, clock):
    place(api_client_for(cast.alice_reseller), "ALICE-2", 20)

    send_partner_digests(now=timezone.now())

    assert not Digest.objects.filter(partner=cast.distributor).exists()
    assert not Digest.objects.filter(partner=cast.other_distributor).exists()
    assert Digest.objects.filter(partner=cast.alice_reseller).exists()


def test_the_distributor_hears_of_expiry_and_renewal_of_its_orders(cast, carol_account, clock):
    from lifecycle.services import run_daily_jobs

    line = {
        "product": "ATTENDANT_CONSOLE",
        "quantity": 5,
        "kind": "subscription",
        "ends_at": at(days=1).isoformat(),
        "auto_renew": False,
    }
    dist = api_client_for(cast.distributor)
    body = order_body("DIST-SUB", CAROL, lines=[line], reseller=str(cast.alice_reseller.pk))
    assert dist.post(URL, body, format="json").status_code == 201
    order = Order.objects.get(reference="DIST-SUB")
    dist.post(f"{URL}/{order.pk}/unlock")

    clock.move_to(at(days=1, hours=2))
    run_daily_jobs()

    content = Digest.objects.get(partner=cast.distributor, day=at(days=1).date()).content
    assert [(i["product"], i["customer"]) for i in content["expired"]] == [
        ("Attendant Console", "Carol Corp")
    ]
