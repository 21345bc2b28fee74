"""PUT /api/v1/servers/{id}/assignments/{product}."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from smartaccounts.models import AuditEvent, License
from smartaccounts.secrets import hash_secret
from tokens.models import ActivationToken, Assignment, Server

from ...conftest import api_client_for
from ...factories import LicenseFactory, ServerFactory
from ...orders.payloads import assert_problem
from .conftest import (
    MANAGERS,
    READ_ONLY,
    assigned_by_license,
    assignment_url,
    client_as,
    held,
    hold,
    snapshot,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", MANAGERS)
def test_first_assignment_of_a_pending_server_mints_a_token(cast, server, recording, who):
    response = client_as(cast, who).put(assignment_url(server.pk), {"quantity": 4}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["product"], body["quantity"], body["available"]) == ("CALL_RECORDING", 4, 6)
    assert body["token"].startswith("act_")
    assert body["token_expires_at"]
    assert body["server"]["assignments"][0]["quantity"] == 4
    token = ActivationToken.objects.get(server=server)
    assert token.token_hash == hash_secret(body["token"])
    assert token.status(timezone.now()) == "valid"
    assert held(server) == {recording.pk: 4}
    recording.refresh_from_db()
    assert recording.assigned == 4
    assert AuditEvent.objects.filter(action="capacity.assigned").count() == 1


def test_later_assignment_changes_do_not_mint_another_token(cast, carol_api, server, recording):
    LicenseFactory(account=server.account, product=cast.console, quantity=3)
    first = carol_api.put(assignment_url(server.pk), {"quantity": 4}, format="json").json()

    more = carol_api.put(assignment_url(server.pk), {"quantity": 7}, format="json")
    other = carol_api.put(
        assignment_url(server.pk, "ATTENDANT_CONSOLE"), {"quantity": 1}, format="json"
    )

    assert more.status_code == 200 and other.status_code == 200
    assert "token" not in more.json() and "token" not in other.json()
    assert more.json()["available"] == 3
    token = ActivationToken.objects.get()  # still the one
    assert token.token_hash == hash_secret(first["token"])
    assert token.revoked_at is None
    recording.refresh_from_db()
    assert recording.assigned == 7


def test_an_active_server_gets_no_token(cast, carol_api, server, recording):
    Server.objects.filter(pk=server.pk).update(state=Server.State.ACTIVE)

    response = carol_api.put(assignment_url(server.pk), {"quantity": 2}, format="json")

    assert response.status_code == 200
    assert "token" not in response.json()
    assert not ActivationToken.objects.exists()
    assert held(server) == {recording.pk: 2}


def test_more_than_available_is_409_and_changes_nothing(cast, carol_api, server, recording):
    other = ServerFactory(account=server.account, name="Other")
    hold(other, cast.recording, 7)
    hold(server, cast.recording, 1)
    before = snapshot()
    events = AuditEvent.objects.count()

    response = carol_api.put(assignment_url(server.pk), {"quantity": 5}, format="json")

    body = assert_problem(response, 409, "insufficient_capacity")
    assert body["available"] == 2
    assert snapshot() == before
    assert AuditEvent.objects.count() == events


def test_a_product_the_account_does_not_own_has_no_capacity(cast, carol_api, server):
    response = carol_api.put(
        assignment_url(server.pk, "CALL_BILLING"), {"quantity": 1}, format="json"
    )

    assert assert_problem(response, 409, "insufficient_capacity")["available"] == 0
    assert not Assignment.objects.exists()
    assert not ActivationToken.objects.exists()


def test_zero_frees_the_capacity(cast, carol_api, server, recording):
    carol_api.put(assignment_url(server.pk), {"quantity": 6}, format="json")

    response = carol_api.put(assignment_url(server.pk), {"quantity": 0}, format="json")

    assert response.status_code == 200
    assert (response.json()["quantity"], response.json()["available"]) == (0, 10)
    assert response.json()["server"]["assignments"] == []
    assert not Assignment.objects.exists()
    recording.refresh_from_db()
    assert recording.assigned == 0


def test_locked_and_expired_licenses_are_not_capacity(cast, carol_api, server, account):
    active = LicenseFactory(account=account, product=cast.recording, quantity=5)
    locked = LicenseFactory(
        account=account, product=cast.recording, quantity=50, state=License.State.LOCKED
    )
    expired = LicenseFactory(
        account=account, product=cast.recording, quantity=50, state=License.State.EXPIRED
    )

    before = snapshot()

    refused = carol_api.put(assignment_url(server.pk), {"quantity": 6}, format="json")

    assert assert_problem(refused, 409, "insufficient_capacity")["available"] == 5
    assert snapshot() == before
    assert assigned_by_license() == {active.pk: 0, locked.pk: 0, expired.pk: 0}


def test_exactly_the_active_capacity_fits(cast, carol_api, server, account):
    active = LicenseFactory(account=account, product=cast.recording, quantity=5)
    locked = LicenseFactory(
        account=account, product=cast.recording, quantity=50, state=License.State.LOCKED
    )
    other = ServerFactory(account=account, name="Other")
    hold(other, cast.recording, 2)

    fits = carol_api.put(assignment_url(server.pk), {"quantity": 3}, format="json")

    assert fits.status_code == 200, fits.content
    assert (fits.json()["quantity"], fits.json()["available"]) == (3, 0)
    assert assigned_by_license() == {active.pk: 5, locked.pk: 0}
    assert held(server) == {active.pk: 3}


def test_draws_perpetual_first_then_latest_care_end_and_releases_subscriptions_first(
    cast, carol_api, server, account
):
    now = timezone.now()
    subscription = LicenseFactory(
        account=account,
        product=cast.recording,
        kind=License.Kind.SUBSCRIPTION,
        quantity=4,
        ends_at=now + timedelta(days=900),
        care_ends_at=now + timedelta(days=900),  # the latest care, yet a subscription
    )
    perpetual_short_care = LicenseFactory(
        account=account, product=cast.recording, quantity=4, care_ends_at=now + timedelta(days=30)
    )
    perpetual_long_care = LicenseFactory(
        account=account, product=cast.recording, quantity=4, care_ends_at=now + timedelta(days=700)
    )

    def put(quantity: int) -> None:
        response = carol_api.put(assignment_url(server.pk), {"quantity": quantity}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["available"] == 12 - quantity

    put(3)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 3,
        perpetual_short_care.pk: 0,
        subscription.pk: 0,
    }
    put(6)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 4,
        perpetual_short_care.pk: 2,
        subscription.pk: 0,
    }
    put(10)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 4,
        perpetual_short_care.pk: 4,
        subscription.pk: 2,
    }
    # Lowering gives back the subscription first, then the perpetual whose care ends first.
    put(5)
    assert assigned_by_license() == {
        perpetual_long_care.pk: 4,
        perpetual_short_care.pk: 1,
        subscription.pk: 0,
    }
    assert held(server) == {perpetual_long_care.pk: 4, perpetual_short_care.pk: 1}


def test_unknown_product_is_404(carol_api, server, recording):
    response = carol_api.put(
        assignment_url(server.pk, "NO_SUCH_APP"), {"quantity": 1}, format="json"
    )

    assert_problem(response, 404, "not_found")
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": -1},
        {"quantity": "three"},
        {"quantity": 1.5},
        {"quantity": None},
        {"quantity": [2]},
        {"quantity": 10_000_001},
        {},
    ],
)
def test_invalid_quantities_are_400(carol_api, server, recording, body):
    response = carol_api.put(assignment_url(server.pk), body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert "quantity" in problem["errors"]
    assert not Assignment.objects.exists()
    assert not ActivationToken.objects.exists()
    recording.refresh_from_db()
    assert recording.assigned == 0


def test_injected_fields_on_assignment_are_refused_and_change_nothing(
    cast, carol_api, server, recording
):
    before = snapshot()

    response = carol_api.put(
        assignment_url(server.pk),
        {"quantity": 2, "assigned": 0, "license": str(recording.pk), "state": "active"},
        format="json",
    )

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == {
        "assigned": ["Unknown field."],
        "license": ["Unknown field."],
        "state": ["Unknown field."],
    }
    assert snapshot() == before
    recording.refresh_from_db()
    assert (recording.assigned, recording.quantity) == (0, 10)
    assert Server.objects.get().state == "pending"


def test_another_tenants_server_assignment_is_404(cast, server, recording):
    before = snapshot()

    for who in ("bob_reseller", "dave_customer", "other_distributor"):
        response = api_client_for(getattr(cast, who)).put(
            assignment_url(server.pk), {"quantity": 1}, format="json"
        )
        assert_problem(response, 404, "not_found")
    assert snapshot() == before


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_assign(cast, server, recording, who):
    before = snapshot()

    response = client_as(cast, who).put(assignment_url(server.pk), {"quantity": 1}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.parametrize("bad_id", ["not-a-uuid", str(uuid.UUID(int=1))])
def test_assignment_on_unknown_server_is_404(carol_api, recording, bad_id):
    response = carol_api.put(assignment_url(bad_id), {"quantity": 1}, format="json")

    assert_problem(response, 404, "not_found")
    assert not Assignment.objects.exists()


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_assignment_wrong_method_is_405(carol_api, server, recording, method):
    response = getattr(carol_api, method)(assignment_url(server.pk), {"quantity": 1}, format="json")

    assert_problem(response, 405, "method_not_allowed")
    assert not Assignment.objects.exists()
