"""Races on real PostgreSQL: threads with their own connections and transactions."""

import pytest
from rest_framework.test import APIClient

from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import AuditEvent, License

from ..concurrency import run_together
from ..conftest import api_client_for, requires_postgres
from .payloads import URL, order_body

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_ten_identical_concurrent_posts_make_one_order_and_one_email(cast):
    body = order_body("PO-RACE")
    header = api_client_for(cast.alice_reseller)._credentials["HTTP_AUTHORIZATION"]

    def post(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        return client.post(URL, body, format="json")

    responses = run_together(10, post)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Order.objects.count() == 1
    assert License.objects.count() == 2
    assert OutboundEmail.objects.filter(kind="order").count() == 1


def test_concurrent_unlocks_unlock_once(cast):
    client = api_client_for(cast.alice_reseller)
    order_id = client.post(URL, order_body("PO-UNLOCK"), format="json").json()["id"]
    header = client._credentials["HTTP_AUTHORIZATION"]

    def unlock(_):
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=header)
        return c.post(f"{URL}/{order_id}/unlock").status_code

    assert run_together(6, unlock) == [200] * 6
    assert AuditEvent.objects.filter(action="order.unlocked").count() == 1
    assert set(License.objects.values_list("state", flat=True)) == {"active"}
    # The first-time customer is invited once, not once per request.
    assert OutboundEmail.objects.filter(kind="invitation").count() == 1


def test_concurrent_unlocks_tell_the_customer_once(cast):
    carol = {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"}
    client = api_client_for(cast.alice_reseller)
    order_id = client.post(URL, order_body("PO-TELL", carol), format="json").json()["id"]
    header = client._credentials["HTTP_AUTHORIZATION"]

    def unlock(_):
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=header)
        return c.post(f"{URL}/{order_id}/unlock").status_code

    assert run_together(6, unlock) == [200] * 6
    told = OutboundEmail.objects.filter(kind="licenses_available")
    assert [row.to for row in told] == [["carol@carol.example"]]


def test_the_reseller_racing_the_distributor_never_unlocks(cast):
    body = order_body("PO-HELD", reseller=str(cast.alice_reseller.pk))
    order_id = api_client_for(cast.distributor).post(URL, body, format="json").json()["id"]
    reseller = api_client_for(cast.alice_reseller)._credentials["HTTP_AUTHORIZATION"]

    def unlock(index):
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=reseller)
        return c.post(f"{URL}/{order_id}/unlock").status_code

    assert run_together(4, unlock) == [404] * 4
    assert Order.objects.get(pk=order_id).state == "locked"
    assert not AuditEvent.objects.filter(action="order.unlocked").exists()
