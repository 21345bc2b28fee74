"""The order's printable delivery sheet (issue 20): what was delivered, into which account,
locked or unlocked, and when; a local stylesheet with print rules; reached from the order."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from orders.models import Order

from ..conftest import api_client_for
from .payloads import URL, order_body

pytestmark = pytest.mark.django_db

CAROL = {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def order(cast, django_capture_on_commit_callbacks) -> Order:
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(cast.alice_reseller).post(
            URL, order_body("PO-SHEET", CAROL), format="json"
        )
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["id"])


def test_the_sheet_says_what_went_where_and_that_it_is_locked(cast, order):
    response = login(cast.alice_member).get(f"/orders/{order.pk}/delivery-sheet/")

    assert response.status_code == 200
    page = text_of(response.content.decode())
    assert "Delivery sheet — order PO-SHEET" in page
    assert f"the Smart Account {order.account.name} of Carol Corp" in page
    assert "Locked: the licenses cannot be used until Alice Reseller unlocks the order" in page
    line = order.lines.select_related("product").first()
    assert f"{line.quantity} {line.product.unit}" in page
    assert "Status" in page and " Locked " in f" {page} "


def test_after_the_unlock_each_line_says_when(cast, order):
    assert api_client_for(cast.alice_reseller).post(f"{URL}/{order.pk}/unlock").status_code == 200
    order.refresh_from_db()

    page = text_of(
        login(cast.alice_member).get(f"/orders/{order.pk}/delivery-sheet/").content.decode()
    )

    stamp = order.unlocked_at.strftime("%Y-%m-%d %H:%M")
    assert f"Unlocked {stamp}" in page
    assert "Locked:" not in page


def test_the_order_page_links_to_it_and_it_prints_with_a_local_stylesheet(cast, order):
    detail = login(cast.alice_member).get(f"/orders/{order.pk}/").content.decode()
    assert f'href="/orders/{order.pk}/delivery-sheet/"' in detail

    sheet = login(cast.alice_member).get(f"/orders/{order.pk}/delivery-sheet/").content.decode()
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', sheet)
    assert any(href.endswith("delivery-sheet.css") for href in sheets)
    assert all(href.startswith(settings.STATIC_URL) for href in sheets)
    assert "<style" not in sheet and "<script>" not in sheet
    css = Path(settings.BASE_DIR, "licensing_portal/static/portal/delivery-sheet.css").read_text()
    assert "@media print" in css and ".screen-only { display: none" in css


def test_the_reseller_reads_the_sheet_of_the_order_its_distributor_holds(
    cast, django_capture_on_commit_callbacks
):
    body = order_body("DIST-SHEET", CAROL)
    body["reseller"] = str(cast.alice_reseller.pk)
    with django_capture_on_commit_callbacks(execute=True):
        placed = api_client_for(cast.distributor).post(URL, body, format="json")
    order_id = placed.json()["id"]

    page = text_of(
        login(cast.alice_admin).get(f"/orders/{order_id}/delivery-sheet/").content.decode()
    )

    assert "until Dist One unlocks the order" in page


@pytest.mark.parametrize("who", ["bob_admin", "carol_admin"])
def test_others_get_no_sheet(cast, order, who):
    response = login(getattr(cast, who)).get(f"/orders/{order.pk}/delivery-sheet/")

    assert response.status_code in (403, 404)
    assert "PO-SHEET" not in response.content.decode()


def test_the_sheet_only_reads(cast, order):
    response = login(cast.alice_admin).post(f"/orders/{order.pk}/delivery-sheet/")

    assert response.status_code == 405
