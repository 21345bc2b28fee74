"""Assigning capacity from the server page, the activation token and regenerating it."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from smartaccounts.models import AuditEvent
from smartaccounts.secrets import hash_secret
from tokens import services
from tokens.models import ActivationToken, Assignment
from tokens.secrets import token_checksum_ok

from ...factories import (
    ServerFactory,
)
from .conftest import (
    ANY_TOKEN,
    READ_ONLY,
    SYSTEM,
    assigned,
    client_for,
    held,
    shown_token,
    snapshot,
    squash,
)

pytestmark = pytest.mark.django_db


def test_the_first_capacity_of_a_pending_server_shows_its_token_once(cast, server):
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 4})

    assert response.status_code == 200
    raw = shown_token(response)
    assert raw.startswith("act_") and token_checksum_ok(raw)
    page = squash(response.content.decode())
    assert "PBX-Milan now holds 4 channels of Call Recording" in page
    assert "HTTPS (port 443)" in page
    assert held(server) == 4
    assert assigned(cast.recording) == 4
    token = ActivationToken.objects.get(server=server)
    assert token.token_hash == hash_secret(raw) != raw
    assert token.revoked_at is None and token.used_at is None
    assert token.expires_at > timezone.now() + timedelta(days=29)
    assert AuditEvent.objects.filter(action="token.minted", object_id=str(server.pk)).exists()
    assert AuditEvent.objects.filter(action="capacity.assigned", object_id=str(server.pk)).exists()
    # Shown once: the page afterwards tells that a token waits, not what it is.
    later = client.get(f"/servers/{server.pk}/").content.decode()
    assert raw not in later and not ANY_TOKEN.search(later)
    assert "Waiting for activation" in later


def test_an_htmx_assignment_returns_the_server_body_with_the_token(cast, server):
    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 2}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response.templates[0].name == "tokens/_server_body.html"
    assert "<html" not in response.content.decode()
    assert hash_secret(shown_token(response)) == ActivationToken.objects.get().token_hash
    assert held(server) == 2


def test_changing_the_capacity_later_mints_no_other_token(cast, server, minted):
    client = client_for(cast.alice_member)

    raised = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 7})
    assert raised.status_code == 200
    assert "activation-token" not in raised.content.decode()
    assert held(server) == assigned(cast.recording) == 7

    lowered = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1})
    assert lowered.status_code == 200
    assert held(server) == assigned(cast.recording) == 1

    freed = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 0})
    assert freed.status_code == 200
    assert not Assignment.objects.filter(server=server).exists()
    assert assigned(cast.recording) == 0
    token = ActivationToken.objects.get()
    assert token.token_hash == hash_secret(minted) and token.revoked_at is None


def test_more_than_available_shows_an_error_and_changes_nothing(cast, account, server, minted):
    other = ServerFactory(account=account, name="PBX-Rome")
    services.assign_capacity(server=other, product=cast.recording, quantity=5, actor=SYSTEM)
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 6}
    )

    assert response.status_code == 409
    page = response.content.decode()
    error = re.search(r'<ul class="errorlist" id="err-CALL_RECORDING"[^>]*>(.*?)</ul>', page, re.S)
    assert error is not None
    assert "Only 1 more channels of Call Recording are available" in squash(error.group(1))
    assert re.search(r'id="qty-CALL_RECORDING"[^>]*aria-invalid="true"', page)
    assert "activation-token" not in page
    assert snapshot() == before
    assert held(server) == 4


@pytest.mark.parametrize("quantity", ["-1", "abc", "", "1.5", "99999999999"])
def test_an_invalid_quantity_is_400_beside_its_field_and_changes_nothing(cast, server, quantity):
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": quantity}
    )

    assert response.status_code == 400
    assert 'id="err-CALL_RECORDING"' in response.content.decode()
    assert snapshot() == before


def test_a_missing_quantity_is_400(cast, server):
    before = snapshot()

    response = client_for(cast.alice_member).post(f"/servers/{server.pk}/assign/CALL_RECORDING/")

    assert response.status_code == 400
    assert 'id="err-CALL_RECORDING"' in response.content.decode()
    assert snapshot() == before


def test_an_unknown_product_is_404(cast, server):
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/NO_SUCH_APP/", {"quantity": 1}
    )

    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("who", READ_ONLY)
def test_read_only_roles_may_not_assign(cast, server, who):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1}
    )

    assert response.status_code == 403
    assert snapshot() == before


def test_another_tenant_may_not_assign(cast, server):
    before = snapshot()

    response = client_for(cast.bob_admin).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1}
    )

    assert response.status_code == 404
    assert snapshot() == before


def test_a_deactivated_server_takes_no_capacity(cast, server):
    services.deactivate_server(server=server, actor=SYSTEM)
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 1}
    )

    assert response.status_code == 400  # validation_error's status (STATUS_FOR_CODE)
    errors = re.search(
        r'<ul class="errorlist" role="alert" id="capacity-errors">(.*?)</ul>',
        response.content.decode(),
        re.S,
    )
    assert errors is not None
    assert "This server is deactivated." in errors.group(1)
    assert snapshot() == before


def test_an_application_the_account_lacks_shows_an_error_and_changes_nothing(cast, server):
    before = snapshot()

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_BILLING/", {"quantity": 1}
    )

    assert response.status_code == 409
    errors = re.search(r'id="capacity-errors">(.*?)</ul>', response.content.decode(), re.S)
    assert errors is not None
    assert "Only 0 more users of Call Billing are available" in errors.group(1)
    assert snapshot() == before


def test_regenerate_shows_a_new_token_and_revokes_the_old_one(cast, server, minted):
    old = ActivationToken.objects.get()

    response = client_for(cast.alice_member).post(f"/servers/{server.pk}/token/")

    assert response.status_code == 200
    raw = shown_token(response)
    assert raw != minted and raw.startswith("act_") and token_checksum_ok(raw)
    old.refresh_from_db()
    assert old.revoked_at is not None
    new = ActivationToken.objects.exclude(pk=old.pk).get()
    assert new.token_hash == hash_secret(raw)
    assert new.revoked_at is None and new.used_at is None
    assert AuditEvent.objects.filter(action="token.regenerated").count() == 1
    assert held(server) == 4  # capacity is untouched


def test_an_active_server_gets_no_new_token(cast, fleet):
    _, rome = fleet
    client = client_for(cast.alice_member)

    response = client.post(f"/servers/{rome.pk}/token/", HTTP_HX_REQUEST="true")

    # Rendered in place (a stale tab sees why, and the server as it is now).
    assert response.status_code == 409
    assert not ActivationToken.objects.filter(server=rome).exists()
    page = response.content.decode()
    assert "tokens are only for servers not yet activated" in page
    assert "Active (online)" in page


@pytest.mark.parametrize(("who", "status"), [(w, 403) for w in READ_ONLY] + [("bob_admin", 404)])
def test_who_may_not_regenerate_revokes_nothing(cast, server, minted, who, status):
    before = snapshot()

    response = client_for(getattr(cast, who)).post(f"/servers/{server.pk}/token/")

    assert response.status_code == status
    assert minted not in response.content.decode()
    assert snapshot() == before


def test_saving_the_quantity_a_server_already_holds_changes_and_records_nothing(
    cast, server, minted
):
    client = client_for(cast.alice_member)
    before = snapshot()
    stamps = set(Assignment.objects.values_list("pk", "updated_at"))

    response = client.post(f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 4})

    assert response.status_code == 200
    page = squash(response.content.decode())
    assert "Nothing changed: PBX-Milan already holds 4 channels of Call Recording" in page
    assert "now holds" not in page
    assert "activation-token" not in response.content.decode()
    assert snapshot() == before
    assert set(Assignment.objects.values_list("pk", "updated_at")) == stamps
    assert AuditEvent.objects.filter(action="capacity.assigned").count() == 1


def test_the_api_answers_an_unchanged_quantity_without_an_event(cast, server, minted):
    before = snapshot()

    result = services.assign_capacity(
        server=server, product=cast.recording, quantity=4, actor=SYSTEM
    )

    assert result.changed is False and result.quantity == 4 and result.token is None
    assert snapshot() == before
