"""The orders API: who may place, read, unlock and list orders."""

import uuid

import pytest

from notifications.models import OutboundEmail
from orders.models import Order
from smartaccounts.models import AuditEvent, License

from ...conftest import api_client_for
from ..payloads import URL, assert_problem, order_body

pytestmark = pytest.mark.django_db


def test_unauthenticated_and_bad_keys_are_401(cast, client):
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert_problem(anonymous.post(URL, order_body(), format="json"), 401, "not_authenticated")
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer clp_not-a-real-key")
    assert_problem(anonymous.post(URL, order_body(), format="json"), 401, "not_authenticated")


def test_customers_and_vendor_cannot_place_orders(cast):
    for org in (cast.carol_customer, cast.vendor):
        response = api_client_for(org).post(URL, order_body(), format="json")
        assert_problem(response, 403, "permission_denied")
    assert not Order.objects.exists()


def test_a_viewer_session_cannot_place_orders(cast):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=False)
    client.force_login(cast.alice_viewer)
    assert_problem(client.post(URL, order_body(), format="json"), 403, "permission_denied")


def test_get_order_and_another_resellers_order_is_404(cast, alice_api, bob_api):
    order_id = alice_api.post(URL, order_body(), format="json").json()["id"]

    mine = alice_api.get(f"{URL}/{order_id}")
    assert mine.status_code == 200
    assert mine.json()["customer"]["name"] == "Erin GmbH"
    assert len(mine.json()["licenses"]) == 2
    assert_problem(bob_api.get(f"{URL}/{order_id}"), 404, "not_found")
    assert_problem(bob_api.post(f"{URL}/{order_id}/unlock"), 404, "not_found")
    assert Order.objects.get().state == "locked"


def test_bad_ids_are_404_and_wrong_methods_405(cast, alice_api):
    assert_problem(alice_api.get(f"{URL}/not-a-uuid"), 404, "not_found")
    assert_problem(alice_api.get(f"{URL}/{uuid.uuid4()}"), 404, "not_found")
    assert_problem(alice_api.delete(URL), 405, "method_not_allowed")
    order_id = alice_api.post(URL, order_body(), format="json").json()["id"]
    assert_problem(alice_api.put(f"{URL}/{order_id}", {}, format="json"), 405, "method_not_allowed")
    assert_problem(alice_api.get(f"{URL}/{order_id}/unlock"), 405, "method_not_allowed")


def test_unlock_through_the_api_activates_licenses_once(cast, alice_api):
    order_id = alice_api.post(URL, order_body(), format="json").json()["id"]

    first = alice_api.post(f"{URL}/{order_id}/unlock")
    second = alice_api.post(f"{URL}/{order_id}/unlock")

    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["state"] == "unlocked"
    assert set(License.objects.values_list("state", flat=True)) == {"active"}
    assert AuditEvent.objects.filter(action="order.unlocked").count() == 1


def test_an_unlock_body_it_cannot_honour_is_refused_and_changes_nothing(cast, alice_api):
    """Releasing some lines only is not there yet: a body naming lines must not release the
    whole order (irreversible, and the customer is e-mailed)."""
    order = alice_api.post(URL, order_body(), format="json").json()
    some_line = order["licenses"][0]["id"]
    events, emails = AuditEvent.objects.count(), OutboundEmail.objects.count()

    partial = alice_api.post(f"{URL}/{order['id']}/unlock", {"lines": [some_line]}, format="json")
    unknown = alice_api.post(f"{URL}/{order['id']}/unlock", {"notify": False}, format="json")

    assert list(assert_problem(partial, 400, "validation_error")["errors"]) == ["lines"]
    assert assert_problem(unknown, 400, "validation_error")["errors"] == {
        "notify": ["Unknown field."]
    }
    assert Order.objects.get(pk=order["id"]).state == "locked"
    assert set(License.objects.values_list("state", flat=True)) == {"locked"}
    assert (AuditEvent.objects.count(), OutboundEmail.objects.count()) == (events, emails)
    # No body, or an empty one, unlocks the whole order.
    response = alice_api.post(f"{URL}/{order['id']}/unlock", {}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "unlocked"


def test_a_viewer_may_read_but_not_unlock(cast, alice_api):
    from rest_framework.test import APIClient

    order_id = alice_api.post(URL, order_body(), format="json").json()["id"]
    viewer = APIClient()
    viewer.force_login(cast.alice_viewer)

    assert viewer.get(f"{URL}/{order_id}").status_code == 200
    assert_problem(viewer.post(f"{URL}/{order_id}/unlock"), 403, "permission_denied")
    assert Order.objects.get().state == "locked"


def test_distributor_and_reseller_both_see_an_order_placed_for_the_reseller(
    cast, distributor_api, alice_api, bob_api
):
    order_id = distributor_api.post(
        URL, order_body("D-9", reseller=str(cast.alice_reseller.pk)), format="json"
    ).json()["id"]

    assert alice_api.get(f"{URL}/{order_id}").status_code == 200
    assert distributor_api.get(f"{URL}/{order_id}").status_code == 200
    assert bob_api.get(f"{URL}/{order_id}").status_code == 404


def test_order_list_holds_only_the_callers_orders(
    cast, alice_api, bob_api, django_assert_max_num_queries
):
    for n in range(3):
        alice_api.post(URL, order_body(f"A-{n}"), format="json")
    bob_api.post(URL, order_body("B-1"), format="json")

    with django_assert_max_num_queries(8):
        response = alice_api.get(URL)
    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert {o["reference"] for o in response.json()["results"]} == {"A-0", "A-1", "A-2"}


def test_resellers_list_for_distributors_only(cast, distributor_api, alice_api):
    response = distributor_api.get("/api/v1/resellers")

    assert response.status_code == 200
    assert response.json()["results"] == [
        {"id": str(cast.alice_reseller.pk), "name": "Alice Reseller"}
    ]
    assert_problem(alice_api.get("/api/v1/resellers"), 403, "permission_denied")
    assert_problem(
        distributor_api.post("/api/v1/resellers", {}, format="json"), 405, "method_not_allowed"
    )


def test_injected_fields_are_refused_by_name_and_change_nothing(cast, alice_api):
    body = order_body("PO-MASS", state="unlocked", placed_by=str(cast.bob_reseller.pk))
    body["customer"]["organization"] = str(cast.bob_reseller.pk)
    body["lines"][0]["state"] = "active"
    body["lines"][0]["assigned"] = 5

    response = alice_api.post(URL, body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == {
        name: ["Unknown field."]
        for name in (
            "state",
            "placed_by",
            "customer.organization",
            "lines.0.state",
            "lines.0.assigned",
        )
    }
    assert not Order.objects.exists() and not License.objects.exists()


def test_a_misspelt_optional_member_is_refused_not_dropped(alice_api):
    body = order_body("PO-TYPO")
    body["lines"][0]["auto_renwe"] = False

    problem = assert_problem(alice_api.post(URL, body, format="json"), 400, "validation_error")

    assert problem["errors"] == {"lines.0.auto_renwe": ["Unknown field."]}
    assert not Order.objects.exists()
