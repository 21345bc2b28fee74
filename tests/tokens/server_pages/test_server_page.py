"""The page of one server: what it shows, renaming and deactivating it."""

import re
import uuid

import pytest

from smartaccounts.models import AuditEvent
from smartaccounts.secrets import hash_secret
from tokens.models import ActivationToken, Assignment, Server

from ...factories import (
    ServerCredentialFactory,
)
from .conftest import READ_ONLY, assigned, client_for, held, listed_servers, snapshot, squash

pytestmark = pytest.mark.django_db


def test_the_server_page_shows_what_it_holds_of_what_is_available(cast, fleet):
    milan, _ = fleet

    response = client_for(cast.alice_member).get(f"/servers/{milan.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    table = page.split('class="holdings"')[1].split("</table>")[0]
    rows = {
        squash(re.search(r"<strong>(.*?)</strong>", row, re.S).group(1)): squash(row)
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if "<td" in row
    }
    # 10 channels: Milan holds 4, Rome 2, so 4 are left and Milan could hold up to 8.
    assert "of 8 channels" in rows["Call Recording"]
    assert re.search(r'id="qty-CALL_RECORDING"[^>]*value="4"', page)
    assert rows["Call Recording"].endswith("Save 4 —")
    assert "of 4 seats" in rows["Attendant Console"]
    assert set(rows) == {"Call Recording", "Attendant Console"}
    assert "PBX-Milan" in page and "Pending activation" in page


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_see_the_server_page_without_forms(cast, fleet, who):
    milan, _ = fleet

    response = client_for(getattr(cast, who)).get(f"/servers/{milan.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>4</strong> of 8 channels" in page
    assert "/assign/" not in page and "/rename/" not in page and "/deactivate/" not in page


def test_another_tenants_server_page_is_404(cast, fleet):
    milan, _ = fleet
    dave_box = Server.objects.get(name="Dave-Box")

    assert client_for(cast.bob_admin).get(f"/servers/{milan.pk}/").status_code == 404
    assert client_for(cast.alice_admin).get(f"/servers/{dave_box.pk}/").status_code == 404
    assert client_for(cast.carol_viewer).get(f"/servers/{dave_box.pk}/").status_code == 404


@pytest.mark.parametrize("server_id", ["not-a-uuid", str(uuid.UUID(int=1))])
def test_a_bad_server_id_is_404_on_every_server_url(cast, server, server_id):
    before = snapshot()
    client = client_for(cast.alice_admin)

    assert client.get(f"/servers/{server_id}/").status_code == 404
    assert client.get(f"/servers/{server_id}/deactivate/").status_code == 404
    for path, body in {
        f"/servers/{server_id}/assign/CALL_RECORDING/": {"quantity": 1},
        f"/servers/{server_id}/token/": {},
        f"/servers/{server_id}/rename/": {"name": "x"},
        f"/servers/{server_id}/deactivate/": {},
    }.items():
        assert client.post(path, body).status_code == 404, path
    assert snapshot() == before


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", "assign/CALL_RECORDING/"),
        ("get", "token/"),
        ("get", "rename/"),
        ("put", "assign/CALL_RECORDING/"),
        ("delete", "token/"),
        ("put", "deactivate/"),
        ("delete", "deactivate/"),
    ],
)
def test_server_actions_refuse_other_methods(cast, server, method, suffix):
    before = snapshot()

    response = getattr(client_for(cast.alice_admin), method)(f"/servers/{server.pk}/{suffix}")

    assert response.status_code == 405
    assert snapshot() == before


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_server_page_refuses_other_methods(cast, server, method):
    response = getattr(client_for(cast.alice_admin), method)(f"/servers/{server.pk}/")

    assert response.status_code == 405


def test_rename_changes_the_name(cast, server):
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{server.pk}/rename/", {"name": " PBX  Milano 2 "})

    assert response.status_code == 302
    assert response["Location"] == f"/servers/{server.pk}/"
    server.refresh_from_db()
    assert server.name == "PBX Milano 2"
    event = AuditEvent.objects.get(action="server.renamed")
    assert event.data == {"from": "PBX-Milan", "to": "PBX Milano 2"}
    assert "Renamed to “PBX Milano 2”" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}])
def test_an_invalid_name_is_refused_beside_the_field(cast, server, body):
    before = snapshot()
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{server.pk}/rename/", body)

    assert response.status_code == 400
    assert snapshot() == before
    page = response.content.decode()
    assert re.search(r'id="rename-name"[^>]*aria-invalid="true"', page)
    assert 'id="rename-name-errors"' in page
    assert "<details open>" in page


@pytest.mark.parametrize(("who", "status"), [(w, 403) for w in READ_ONLY] + [("bob_admin", 404)])
def test_who_may_not_rename_changes_nothing(cast, server, who, status):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(f"/servers/{server.pk}/rename/", {"name": "X"})

    assert response.status_code == status
    assert snapshot() == before


def test_deactivate_asks_for_confirmation_and_get_changes_nothing(cast, server, minted):
    before = snapshot()

    response = client_for(cast.alice_member).get(f"/servers/{server.pk}/deactivate/")

    assert response.status_code == 200
    page = squash(response.content.decode())
    assert "Deactivate PBX-Milan?" in page
    assert "4 channels of Call Recording" in page
    assert snapshot() == before


def test_deactivate_frees_the_capacity_and_revokes_token_and_credential(cast, account, fleet):
    milan, rome = fleet
    credential = ServerCredentialFactory(server=rome, credential_hash=hash_secret("c"))
    assert assigned(cast.recording) == 6
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{rome.pk}/deactivate/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/{account.pk}/servers/"
    rome.refresh_from_db()
    assert rome.state == Server.State.DEACTIVATED and rome.deactivated_at is not None
    assert not Assignment.objects.filter(server=rome).exists()
    assert assigned(cast.recording) == 4 and assigned(cast.console) == 0
    credential.refresh_from_db()
    assert credential.revoked_at is not None
    assert held(milan) == 4  # the other server keeps its share
    assert AuditEvent.objects.filter(action="server.deactivated", object_id=str(rome.pk)).exists()
    listing = client.get(response["Location"]).content.decode()
    assert listed_servers(listing) == ["PBX-Milan"]
    assert "is deactivated: its capacity is free to assign again" in listing


def test_deactivating_a_pending_server_revokes_its_token(cast, server, minted):
    response = client_for(cast.alice_member).post(f"/servers/{server.pk}/deactivate/")

    assert response.status_code == 302
    assert ActivationToken.objects.get().revoked_at is not None
    assert assigned(cast.recording) == 0
    page = client_for(cast.alice_member).get(f"/servers/{server.pk}/").content.decode()
    assert "/assign/" not in page


@pytest.mark.parametrize(("who", "status"), [(w, 403) for w in READ_ONLY] + [("bob_admin", 404)])
def test_who_may_not_deactivate_changes_nothing(cast, server, minted, who, status):
    before = snapshot()
    client = client_for(getattr(cast, who))

    assert client.get(f"/servers/{server.pk}/deactivate/").status_code == status
    assert client.post(f"/servers/{server.pk}/deactivate/").status_code == status
    assert snapshot() == before
