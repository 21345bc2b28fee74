"""The servers page of a Smart Account: the list, its filters, and creating a server."""

import re

import pytest

from smartaccounts.models import AuditEvent
from tokens.models import ActivationToken, Server

from .conftest import ANY_TOKEN, READ_ONLY, client_for, listed_servers, server_row, snapshot, squash

pytestmark = pytest.mark.django_db


def test_the_servers_page_lists_the_servers_in_use_and_what_they_hold(cast, account, fleet):
    response = client_for(cast.alice_viewer).get(f"/accounts/{account.pk}/servers/")

    assert response.status_code == 200
    page = response.content.decode()
    assert listed_servers(page) == ["PBX-Milan", "PBX-Rome"]
    assert "Call Recording: 4 channels" in server_row(page, "PBX-Milan")
    rome = server_row(page, "PBX-Rome")
    assert "Active (online)" in rome and "12.1.4" in rome
    assert "Attendant Console: 1 seats" in rome
    assert "Call Recording: 2 channels (3 in use)" in rome
    assert "Deactivated (1)" in squash(page)
    assert "Dave-Box" not in page


@pytest.mark.parametrize(
    ("state", "names"),
    [
        ("deactivated", ["Old-Box"]),
        ("active", ["PBX-Rome"]),
        ("pending", ["PBX-Milan"]),
        ("stale", []),
        ("nonsense", ["PBX-Milan", "PBX-Rome"]),
    ],
)
def test_the_servers_page_filters_by_state(cast, account, fleet, state, names):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/?state={state}")

    assert response.status_code == 200
    assert listed_servers(response.content.decode()) == names


def test_the_distributor_and_viewers_read_the_servers_page_without_the_add_form(
    cast, account, fleet
):
    for name in READ_ONLY:
        response = client_for(getattr(cast, name)).get(f"/accounts/{account.pk}/servers/")
        assert response.status_code == 200, name
        page = response.content.decode()
        assert listed_servers(page) == ["PBX-Milan", "PBX-Rome"], name
        assert "Add a server" not in page, name
        assert "Read only" in page, name
    managers = client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/")
    assert "Add a server" in managers.content.decode()


@pytest.mark.parametrize("who", ["alice_member", "alice_admin", "carol_admin"])
def test_creating_a_server_redirects_to_its_page(cast, account, pool, who):
    client = client_for(getattr(cast, who))

    response = client.post(
        f"/accounts/{account.pk}/servers/", {"name": "  PBX   Turin ", "purpose": "test"}
    )

    server = Server.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/servers/{server.pk}/"
    assert (server.account, server.name, server.purpose, server.state) == (
        account,
        "PBX Turin",
        "test",
        Server.State.PENDING,
    )
    assert not ActivationToken.objects.exists()  # a token comes with the first capacity
    event = AuditEvent.objects.get(action="server.created")
    assert event.object_id == str(server.pk)
    assert event.actor_user == getattr(cast, who)
    page = client.get(response["Location"]).content.decode()
    assert "Server “PBX Turin” created" in page
    assert not ANY_TOKEN.search(page)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "production"}, "name"),
        ({"name": "   ", "purpose": "production"}, "name"),
        ({"name": "x" * 101, "purpose": "production"}, "name"),
        ({"name": "PBX", "purpose": "mainframe"}, "purpose"),
        ({"name": "PBX"}, "purpose"),
    ],
)
def test_an_invalid_server_form_is_400_with_the_error_beside_the_field(cast, account, body, field):
    before = snapshot()

    response = client_for(cast.alice_member).post(f"/accounts/{account.pk}/servers/", body)

    assert response.status_code == 400
    page = response.content.decode()
    # The error follows its own input, before the next field's label.
    beside = re.search(
        rf'<(?:input|select)[^>]*id="id_{field}"[^>]*>.*?'
        rf'<ul class="errorlist" id="id_{field}_errors">',
        page,
        re.S,
    )
    assert beside is not None, page
    assert "<label" not in page[beside.start() : beside.end()]
    assert 'aria-invalid="true"' in page[beside.start() : beside.end()]
    assert "<details open" in page  # the form stays open to be corrected
    assert snapshot() == before


@pytest.mark.parametrize("who", ["alice_viewer", "carol_viewer", "distributor_admin"])
def test_read_only_roles_may_not_create_a_server(cast, account, who):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(
        f"/accounts/{account.pk}/servers/", {"name": "PBX", "purpose": "test"}
    )

    assert response.status_code == 403
    assert snapshot() == before


def test_another_tenants_servers_page_is_404(cast, account, fleet):
    before = snapshot()
    bob = client_for(cast.bob_admin)

    assert bob.get(f"/accounts/{account.pk}/servers/").status_code == 404
    response = bob.post(f"/accounts/{account.pk}/servers/", {"name": "PBX", "purpose": "test"})
    assert response.status_code == 404
    dave = cast.dave_customer.smart_account
    assert client_for(cast.alice_admin).get(f"/accounts/{dave.pk}/servers/").status_code == 404
    assert client_for(cast.carol_admin).get(f"/accounts/{dave.pk}/servers/").status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("account_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_bad_account_id_on_the_servers_page_is_404(cast, account_id):
    client = client_for(cast.alice_admin)

    assert client.get(f"/accounts/{account_id}/servers/").status_code == 404
    response = client.post(f"/accounts/{account_id}/servers/", {"name": "x", "purpose": "test"})
    assert response.status_code == 404
    assert not Server.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_the_servers_page_refuses_other_methods(cast, account, method):
    response = getattr(client_for(cast.alice_admin), method)(f"/accounts/{account.pk}/servers/")

    assert response.status_code == 405
    assert not Server.objects.exists()
