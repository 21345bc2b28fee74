"""GET/POST /api/v1/accounts/{id}/servers."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from smartaccounts.models import AuditEvent
from tokens.models import ActivationToken, Server

from ...conftest import api_client_for
from ...factories import LicenseFactory, ServerFactory
from ...orders.payloads import assert_problem
from .conftest import MANAGERS, READ_ONLY, READERS, _fill, client_as, hold, servers_url, snapshot

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", READERS)
def test_list_holds_the_accounts_servers_with_what_they_hold(
    cast, account, server, recording, dave_server, who
):
    hold(server, cast.recording, 4)
    other = ServerFactory(account=account, name="Backup", purpose="redundancy")

    response = client_as(cast, who).get(servers_url(account.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2
    by_id = {row["id"]: row for row in body["results"]}
    assert set(by_id) == {str(server.pk), str(other.pk)}  # not Dave's
    mine = by_id[str(server.pk)]
    assert mine["state"] == "pending"
    assert mine["account"] == {"id": str(account.pk), "name": account.name}
    assert [(a["product"], a["quantity"]) for a in mine["assignments"]] == [("CALL_RECORDING", 4)]
    assert by_id[str(other.pk)]["purpose"] == "redundancy"
    assert by_id[str(other.pk)]["assignments"] == []


def test_list_filters_by_state(cast, carol_api, account, server):
    gone = ServerFactory(account=account, name="Old", state=Server.State.DEACTIVATED)

    pending = carol_api.get(servers_url(account.pk), {"state": "pending"}).json()
    deactivated = carol_api.get(servers_url(account.pk), {"state": "deactivated"}).json()

    assert [s["id"] for s in pending["results"]] == [str(server.pk)]
    assert [s["id"] for s in deactivated["results"]] == [str(gone.pk)]


@pytest.mark.parametrize("who", MANAGERS)
def test_create_server_is_pending_and_audited(cast, account, who):
    response = client_as(cast, who).post(
        servers_url(account.pk), {"name": "  PBX   Rome ", "purpose": "test"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    created = Server.objects.get(pk=body["id"])
    assert created.account == account
    assert (created.name, created.purpose, created.state) == ("PBX Rome", "test", "pending")
    assert body["state"] == "pending" and body["name"] == "PBX Rome"
    assert body["assignments"] == []
    assert not ActivationToken.objects.filter(server=created).exists()  # only with capacity
    assert AuditEvent.objects.filter(action="server.created", object_id=str(created.pk)).exists()


def test_purpose_defaults_to_production(cast, carol_api, account):
    response = carol_api.post(servers_url(account.pk), {"name": "PBX"}, format="json")

    assert response.status_code == 201
    assert Server.objects.get(pk=response.json()["id"]).purpose == "production"


def test_another_tenants_account_is_404_for_list_and_create(cast, account, server):
    bob = api_client_for(cast.bob_reseller)
    before = snapshot()

    assert_problem(bob.get(servers_url(account.pk)), 404, "not_found")
    assert_problem(
        bob.post(servers_url(account.pk), {"name": "X"}, format="json"), 404, "not_found"
    )
    # Dave (Bob's customer) and Alice's other distributor's world see nothing of Carol either.
    dave = api_client_for(cast.dave_customer)
    assert_problem(dave.get(servers_url(account.pk)), 404, "not_found")
    stray = api_client_for(cast.other_distributor)
    assert_problem(stray.get(servers_url(account.pk)), 404, "not_found")
    assert snapshot() == before


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_create_servers(cast, account, who):
    before = snapshot()

    response = client_as(cast, who).post(servers_url(account.pk), {"name": "X"}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.UUID(int=1)), "1"])
def test_unknown_account_is_404(carol_api, bad_id):
    assert_problem(carol_api.get(servers_url(bad_id)), 404, "not_found")
    assert_problem(
        carol_api.post(servers_url(bad_id), {"name": "X"}, format="json"), 404, "not_found"
    )
    assert not Server.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_servers_list_wrong_method_is_405(carol_api, account, server, method):
    response = getattr(carol_api, method)(servers_url(account.pk), {}, format="json")

    assert_problem(response, 405, "method_not_allowed")
    assert Server.objects.get().state == "pending"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "PBX", "purpose": "gaming"}, "purpose"),
        ({"name": ["PBX"]}, "name"),
    ],
)
def test_invalid_server_bodies_are_400(carol_api, account, body, field):
    response = carol_api.post(servers_url(account.pk), body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"]
    assert not Server.objects.exists()


def test_malformed_json_is_400(carol_api, account):
    response = carol_api.post(
        servers_url(account.pk), data="{not json", content_type="application/json"
    )

    assert_problem(response, 400, "validation_error")
    assert not Server.objects.exists()


def test_injected_fields_on_create_are_refused_and_change_nothing(cast, carol_api, account):
    dave_account = cast.dave_customer.smart_account
    forged_id = uuid.uuid4()
    response = carol_api.post(
        servers_url(account.pk),
        {
            "id": str(forged_id),
            "name": "PBX",
            "state": "active",
            "account": str(dave_account.pk),
            "fingerprint": "forged-fp",
            "hostname": "evil.example",
            "activated_at": timezone.now().isoformat(),
            "clone_suspected_at": timezone.now().isoformat(),
        },
        format="json",
    )

    problem = assert_problem(response, 400, "validation_error")
    assert set(problem["errors"]) == {
        "id",
        "state",
        "account",
        "fingerprint",
        "hostname",
        "activated_at",
        "clone_suspected_at",
    }
    assert not Server.objects.exists()


def test_server_list_query_count_is_constant(
    cast, carol_api, account, django_assert_max_num_queries
):
    products = [cast.recording, cast.console]
    for product in products:
        # Two licenses each so that servers' holdings spread over several rows.
        LicenseFactory(account=account, product=product, quantity=20)
        LicenseFactory(
            account=account,
            product=product,
            quantity=20,
            kind="subscription",
            ends_at=timezone.now() + timedelta(days=300),
        )
    carol_api.get(servers_url(account.pk))  # the API key's last_used_at touch happens once

    _fill(account, products, 3)
    with django_assert_max_num_queries(5) as small:
        response = carol_api.get(servers_url(account.pk))
    assert response.json()["count"] == 3
    assert all(len(s["assignments"]) == 2 for s in response.json()["results"])

    _fill(account, products, 27)
    with django_assert_max_num_queries(5) as big:
        response = carol_api.get(servers_url(account.pk))
    assert response.json()["count"] == 30
    assert all(len(s["assignments"]) == 2 for s in response.json()["results"])
    assert len(big.captured_queries) == len(small.captured_queries)
