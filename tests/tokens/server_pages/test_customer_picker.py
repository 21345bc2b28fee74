"""The customer picker, and anonymous visitors to the server pages."""

import pytest
from django.test import Client

from ...factories import (
    CustomerFactory,
    PartnerLinkFactory,
)
from .conftest import client_for, picker_rows, snapshot

pytestmark = pytest.mark.django_db


def test_the_picker_lists_the_resellers_customers_with_their_counts(cast, picker_data):
    response = client_for(cast.alice_viewer).get("/customers/")

    assert response.status_code == 200
    page = response.content.decode()
    assert picker_rows(page) == {"Carol Corp": ["2", "2", "2"], "Erin Ltd": ["0", "0", "0"]}
    assert f'href="/accounts/{picker_data.pk}/"' in page
    assert "Dave Inc" not in page
    assert 'id="picker-rows"' in page


def test_the_picker_searches_by_name_in_any_case(cast, picker_data):
    client = client_for(cast.alice_member)

    assert list(picker_rows(client.get("/customers/?q=CAR").content.decode())) == ["Carol Corp"]
    assert list(picker_rows(client.get("/customers/?q=erin").content.decode())) == ["Erin Ltd"]
    # Bob's customer is not found by name either.
    nothing = client.get("/customers/?q=Dave").content.decode()
    assert picker_rows(nothing) == {}
    assert "No customer matches “Dave”" in nothing


def test_an_htmx_search_returns_only_the_rows_fragment(cast, picker_data):
    response = client_for(cast.alice_member).get("/customers/?q=erin", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    page = response.content.decode()
    assert response.templates[0].name == "tokens/_picker_rows.html"
    assert "<html" not in page and "<header" not in page and 'id="picker-rows"' not in page
    assert picker_rows(page) == {"Erin Ltd": ["0", "0", "0"]}


def test_the_distributor_sees_its_resellers_customers_read_only(cast, picker_data):
    # Stray's customer belongs to another distributor's reseller.
    stray_customer = CustomerFactory(name="Stray Customer")
    PartnerLinkFactory(reseller=cast.stray_reseller, customer=stray_customer)

    response = client_for(cast.distributor_admin).get("/customers/")

    assert response.status_code == 200
    assert set(picker_rows(response.content.decode())) == {"Carol Corp", "Erin Ltd"}


def test_the_picker_is_404_for_customers_and_vendor_staff(cast, picker_data):
    for user in (cast.carol_admin, cast.carol_viewer, cast.vendor_staff):
        response = client_for(user).get("/customers/")
        assert response.status_code == 404, user.email
        assert picker_rows(response.content.decode()) == {}


def test_the_picker_is_paginated(cast):
    for n in range(30):
        PartnerLinkFactory(reseller=cast.alice_reseller, customer=CustomerFactory(name=f"C{n:02d}"))
    client = client_for(cast.alice_member)

    first = picker_rows(client.get("/customers/").content.decode())
    second_page = client.get("/customers/?page=2").content.decode()

    assert len(first) == 25
    assert set(first) | set(picker_rows(second_page)) == {"Carol Corp"} | {
        f"C{n:02d}" for n in range(30)
    }
    assert "Page 2 of 2" in second_page


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_picker_refuses_other_methods(cast, method):
    response = getattr(client_for(cast.alice_admin), method)("/customers/")

    assert response.status_code == 405


def test_anonymous_visitors_are_sent_to_login_and_change_nothing(cast, server):
    before = snapshot()
    client = Client()
    paths = [
        "/customers/",
        f"/accounts/{server.account_id}/servers/",
        f"/servers/{server.pk}/",
        f"/servers/{server.pk}/deactivate/",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/?next="), path
    posts = {
        f"/accounts/{server.account_id}/servers/": {"name": "x", "purpose": "test"},
        f"/servers/{server.pk}/assign/CALL_RECORDING/": {"quantity": 1},
        f"/servers/{server.pk}/token/": {},
        f"/servers/{server.pk}/rename/": {"name": "x"},
        f"/servers/{server.pk}/deactivate/": {},
    }
    for path, body in posts.items():
        response = client.post(path, body)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/"), path
    assert snapshot() == before
