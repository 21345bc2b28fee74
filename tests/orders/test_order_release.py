"""Who releases an order (SECURITY.md S29) and the portal's confirm step before unlocking.

Only the organization that placed an order (and vendor staff) unlocks it or re-sends its
e-mail. The distributor holds the licenses until its reseller pays: the reseller sees the order
its distributor placed for it, read only, and gets a 404 on every way to release it."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from notifications.models import OutboundEmail
from orders import services
from orders.errors import OrderError
from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License

from ..conftest import api_client_for
from .payloads import URL, assert_problem, order_body

pytestmark = pytest.mark.django_db

CAROL = {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"}


def snapshot() -> dict[str, list]:
    """Every row a release could touch."""
    return {
        "orders": list(Order.objects.order_by("pk").values()),
        "licenses": list(License.objects.order_by("pk").values()),
        "outbox": list(OutboundEmail.objects.order_by("pk").values()),
        "audit": list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True)),
    }


def license_states(order: Order) -> set[str]:
    return set(License.objects.filter(order_lines__order=order).values_list("state", flat=True))


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def place(cast, django_capture_on_commit_callbacks):
    """Place an order through the API as `org` (the distributor names Alice as reseller)."""

    def _place(org, reference: str = "PO-R1") -> Order:
        body = order_body(reference, CAROL)
        if org == cast.distributor:
            body["reseller"] = str(cast.alice_reseller.pk)
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client_for(org).post(URL, body, format="json")
        assert response.status_code == 201, response.content
        return Order.objects.get(pk=response.json()["id"])

    return _place


@pytest.fixture
def dist_order(cast, place) -> Order:
    order = place(cast.distributor, "DIST-1")
    assert order.placed_by == cast.distributor and order.reseller == cast.alice_reseller
    return order


# --- The reseller sees its distributor's order but cannot release it ---------------------------


def test_the_reseller_reads_the_distributors_order_in_the_api(cast, dist_order, alice_api):
    response = alice_api.get(f"{URL}/{dist_order.pk}")

    assert response.status_code == 200
    assert response.json()["placed_by"]["name"] == "Dist One"
    assert response.json()["state"] == "locked"


def test_the_reseller_cannot_unlock_the_distributors_order_in_the_api(
    cast, dist_order, alice_api, django_capture_on_commit_callbacks
):
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(f"{URL}/{dist_order.pk}/unlock")

    assert_problem(response, 404, "not_found")
    assert snapshot() == before
    assert license_states(dist_order) == {"locked"}
    assert len(mail.outbox) == 1  # only the distributor's order e-mail


def test_the_reseller_sees_the_distributors_order_in_the_portal_without_buttons(
    cast, dist_order, place
):
    own = place(cast.alice_reseller, "ALICE-1")
    client = login(cast.alice_admin)

    detail = client.get(f"/orders/{dist_order.pk}/")
    listing = client.get("/orders/")

    assert detail.status_code == 200
    page = detail.content.decode()
    assert "DIST-1" in page
    assert f"/orders/{dist_order.pk}/unlock/" not in page
    assert f"/orders/{dist_order.pk}/resend/" not in page
    assert "only Dist One can unlock it" in page
    rows = listing.content.decode()
    assert f"/orders/{dist_order.pk}/unlock/" not in rows
    assert f"/orders/{dist_order.pk}/resend/" not in rows
    assert "held by Dist One" in rows
    # Its own order keeps its buttons.
    assert f"/orders/{own.pk}/unlock/" in rows
    assert f"/orders/{own.pk}/resend/" in rows


@pytest.mark.parametrize("who", ["alice_admin", "alice_member"])
def test_the_reseller_gets_404_on_every_portal_way_to_release_it(
    cast, dist_order, who, django_capture_on_commit_callbacks
):
    client = login(getattr(cast, who))
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        confirm = client.get(f"/orders/{dist_order.pk}/unlock/")
        unlock = client.post(f"/orders/{dist_order.pk}/unlock/")
        resend = client.post(f"/orders/{dist_order.pk}/resend/")

    assert (confirm.status_code, unlock.status_code, resend.status_code) == (404, 404, 404)
    assert snapshot() == before
    assert len(mail.outbox) == 1


def test_the_service_refuses_the_reseller_too(cast, dist_order):
    """The rule is checked again below the views (an admin action, a task, a command)."""
    before = snapshot()
    actor = Actor.for_user(cast.alice_admin)

    with pytest.raises(OrderError) as unlocked:
        services.unlock_order(order=dist_order, actor=actor)
    with pytest.raises(OrderError) as resent:
        services.resend_order_email(order=dist_order, actor=actor)

    assert unlocked.value.code == resent.value.code == "not_found"
    assert snapshot() == before


def test_a_reseller_outside_the_order_gets_404_too(cast, dist_order, bob_api):
    before = snapshot()

    assert_problem(bob_api.get(f"{URL}/{dist_order.pk}"), 404, "not_found")
    assert_problem(bob_api.post(f"{URL}/{dist_order.pk}/unlock"), 404, "not_found")
    assert login(cast.bob_admin).get(f"/orders/{dist_order.pk}/unlock/").status_code == 404
    assert snapshot() == before


# --- The holder releases ------------------------------------------------------------------------


def test_the_distributor_unlocks_its_order_in_the_api(
    cast, dist_order, distributor_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = distributor_api.post(f"{URL}/{dist_order.pk}/unlock")

    assert response.status_code == 200
    assert response.json()["state"] == "unlocked"
    assert license_states(dist_order) == {"active"}
    event = AuditEvent.objects.get(action="order.unlocked", object_id=str(dist_order.pk))
    assert event.organization == cast.distributor


def test_the_distributor_unlocks_through_the_portals_confirm_page(
    cast, dist_order, django_capture_on_commit_callbacks
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.distributor_admin)
    detail = client.get(f"/orders/{dist_order.pk}/").content.decode()
    assert f'href="/orders/{dist_order.pk}/unlock/"' in detail

    page = client.get(f"/orders/{dist_order.pk}/unlock/")
    form = dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.content.decode())
    )
    assert form["next"] == f"/orders/{dist_order.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/orders/{dist_order.pk}/unlock/", form)

    assert page.status_code == 200
    assert done.status_code == 302
    assert done["Location"] == f"/orders/{dist_order.pk}/"
    assert license_states(dist_order) == {"active"}
    shown = client.get(done["Location"]).content.decode()
    assert "unlocked: its licenses are active" in shown


def test_the_distributor_resends_its_orders_email(
    cast, dist_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(cast.distributor_admin).post(f"/orders/{dist_order.pk}/resend/")

    assert response.status_code == 302
    assert len(mail.outbox) == 2
    assert mail.outbox[-1].to == ["orders@dist.example"]


def test_vendor_staff_unlock_and_resend_from_the_back_office(
    cast, dist_order, place, django_capture_on_commit_callbacks
):
    other = place(cast.distributor, "DIST-2")
    client = login(cast.vendor_staff)

    with django_capture_on_commit_callbacks(execute=True):
        resent = client.post(
            "/admin/orders/order/",
            {"action": "resend_email", "_selected_action": [str(other.pk)]},
        )
        unlocked = client.post(
            "/admin/orders/order/",
            {"action": "unlock_selected", "_selected_action": [str(dist_order.pk)]},
        )

    assert resent.status_code == unlocked.status_code == 302
    assert license_states(dist_order) == {"active"}
    assert license_states(other) == {"locked"}
    assert AuditEvent.objects.filter(
        action="order.email_resent", object_id=str(other.pk), actor_user=cast.vendor_staff
    ).exists()
    assert AuditEvent.objects.filter(
        action="order.unlocked", object_id=str(dist_order.pk), actor_user=cast.vendor_staff
    ).exists()


def test_the_distributors_unlock_link_still_works_without_login(
    cast, dist_order, django_capture_on_commit_callbacks
):
    """The e-mail link is the placing organization's capability: no holder check by login."""
    path = re.search(r"https://licensing\.example\.test(/unlock/[^/\s]+/)", mail.outbox[0].body)
    assert path is not None
    client = Client(enforce_csrf_checks=True)
    client.get(path[1])
    token = client.cookies[settings.CSRF_COOKIE_NAME].value

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path[1], {"csrfmiddlewaretoken": token})

    assert response.status_code == 200
    assert license_states(dist_order) == {"active"}


# --- The portal's confirm step -------------------------------------------------------------------


def test_the_confirm_page_shows_the_order_and_its_lines_and_changes_nothing(cast, place):
    order = place(cast.alice_reseller)
    client = login(cast.alice_member)
    before = snapshot()

    for _ in range(5):
        response = client.get(f"/orders/{order.pk}/unlock/")
        assert response.status_code == 200

    page = response.content.decode()
    assert "Unlock order PO-R1?" in page
    assert "Carol Corp" in page
    assert "Call Recording" in page and "Attendant Console" in page
    assert re.search(rf'<form method="post" action="/orders/{order.pk}/unlock/">', page)
    assert "Confirm unlock" in page and "Keep it locked" in page
    assert snapshot() == before
    assert license_states(order) == {"locked"}


def test_the_list_and_detail_link_to_the_confirm_page_instead_of_unlocking(cast, place):
    order = place(cast.alice_reseller)
    client = login(cast.alice_member)

    for page in (client.get("/orders/"), client.get(f"/orders/{order.pk}/")):
        html = page.content.decode()
        assert re.search(rf'<a href="/orders/{order.pk}/unlock/" role="button"', html)
        assert f'action="/orders/{order.pk}/unlock/"' not in html


def test_the_confirm_page_of_an_unlocked_order_says_so(cast, place):
    order = place(cast.alice_reseller)
    client = login(cast.alice_member)
    client.post(f"/orders/{order.pk}/unlock/")

    page = client.get(f"/orders/{order.pk}/unlock/").content.decode()

    assert "already unlocked" in page
    assert "Confirm unlock" not in page


def test_a_viewer_gets_no_confirm_page(cast, place):
    order = place(cast.alice_reseller)

    assert login(cast.alice_viewer).get(f"/orders/{order.pk}/unlock/").status_code == 403
    page = login(cast.alice_viewer).get(f"/orders/{order.pk}/").content.decode()
    assert f"/orders/{order.pk}/unlock/" not in page
    assert license_states(order) == {"locked"}


def test_a_link_retired_while_its_request_was_on_its_way_unlocks_nothing(cast, place, monkeypatch):
    """The link was valid when the page looked it up, then a re-send replaced it before the
    row lock: the secret is checked again under the lock."""
    order = place(cast.alice_reseller)
    path = re.search(r"https://licensing\.example\.test/unlock/([^/\s]+)/", mail.outbox[-1].body)
    secret = path[1]
    found = services.find_order_by_unlock_secret(secret)
    Order.objects.filter(pk=order.pk).update(unlock_secret_hash="")  # the re-send's effect
    monkeypatch.setattr(services, "find_order_by_unlock_secret", lambda _: found)

    with pytest.raises(OrderError) as refused:
        services.unlock_order_with_link(secret=secret, actor=Actor.anonymous("link"))

    assert refused.value.code == "not_found"
    assert license_states(order) == {"locked"}


def test_the_reseller_is_told_who_holds_the_order_and_how_to_reach_them(cast, dist_order):
    page = login(cast.alice_admin).get(f"/orders/{dist_order.pk}/").content.decode()

    holder = re.search(r'<p id="order-holder">(.*?)</p>', page, re.S)
    assert holder is not None
    text = re.sub(r"<[^>]+>", "", holder.group(1))
    assert "only Dist One can unlock it or re-send its e-mail" in text
    assert "To have it released, contact Dist One at orders@dist.example." in text
    assert 'href="mailto:orders@dist.example?subject=Order%20DIST-1"' in holder.group(1)
    # Nothing tells the reseller to re-send the e-mail itself.
    assert "re-send the e-mail for a new one" not in page
    assert "Re-send the e-mail" not in page


def test_without_an_organization_address_the_holders_admins_are_named(cast, dist_order):
    type(cast.distributor).objects.filter(pk=cast.distributor.pk).update(email="")

    page = login(cast.alice_admin).get(f"/orders/{dist_order.pk}/").content.decode()

    assert 'href="mailto:dan@dist.example?subject=Order%20DIST-1"' in page


def test_the_holder_itself_is_not_told_to_contact_itself(cast, dist_order):
    page = login(cast.distributor_admin).get(f"/orders/{dist_order.pk}/").content.decode()

    assert "To have it released" not in page
    assert "re-send the e-mail for a new one" in page
