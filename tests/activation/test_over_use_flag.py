"""Server.overused: kept by each sync that changes the answer and by each change of capacity,
so a partner's views across thousands of servers read only the flagged few."""

from typing import Any

import pytest

from smartaccounts.models import License, SmartAccount
from tokens import services
from tokens.models import Server
from tokens.selectors import overused_servers_in

from .test_activation_api import activate, sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def activated(cast, perpetual, subscription, pending_server, token_for, device, system):
    """A server holding 20 channels of Call Recording (perpetual) and 4 console seats
    (subscription)."""
    token = token_for(pending_server, cast.recording, 20)
    services.assign_capacity(server=pending_server, product=cast.console, quantity=4, actor=system)
    response = activate(device, token)
    assert response.status_code == 201, response.content
    return response.json()


def flag(activated: dict[str, Any]) -> bool:
    return Server.objects.get(pk=activated["server_id"]).overused


def report(device, activated, recording: int, console: int = 0):
    response = sync(
        device,
        activated["credential"],
        usage={"CALL_RECORDING": recording, "ATTENDANT_CONSOLE": console},
    )
    assert response.status_code == 200, response.content


def test_a_sync_using_more_than_held_flags_the_server_and_one_within_clears_it(activated, device):
    assert flag(activated) is False
    report(device, activated, 21)
    assert flag(activated) is True
    report(device, activated, 20, 4)
    assert flag(activated) is False
    report(device, activated, 0, 5)  # any one product over is over-use
    assert flag(activated) is True


def test_a_change_of_capacity_sets_the_flag_at_once(cast, activated, device, system):
    report(device, activated, 25)
    server = Server.objects.get(pk=activated["server_id"])

    services.assign_capacity(server=server, product=cast.recording, quantity=30, actor=system)
    assert flag(activated) is False

    services.assign_capacity(server=server, product=cast.recording, quantity=10, actor=system)
    assert flag(activated) is True

    services.deactivate_server(server=server, actor=system)
    assert flag(activated) is False


def test_capacity_lost_to_an_expiry_is_flagged_by_the_next_sync_with_the_same_report(
    activated, device, subscription
):
    report(device, activated, 20, 4)
    assert flag(activated) is False
    License.objects.filter(pk=subscription.pk).update(state=License.State.EXPIRED)

    report(device, activated, 20, 4)  # nothing new reported, within the record interval

    assert flag(activated) is True


def test_a_partners_views_list_flagged_servers_checked_against_what_they_hold_now(
    cast, activated, device, carol_account
):
    accounts = SmartAccount.objects.filter(pk=carol_account.pk)
    report(device, activated, 25)
    assert [(o.product.code, o.used, o.held) for o in overused_servers_in(accounts)] == [
        ("CALL_RECORDING", 25, 20)
    ]
    # Not flagged: not read, whatever the stored report says.
    Server.objects.filter(pk=activated["server_id"]).update(overused=False)
    assert overused_servers_in(accounts) == []
    # Flagged, but within what it holds now: checked again, not listed.
    Server.objects.filter(pk=activated["server_id"]).update(
        overused=True, reported_usage={"CALL_RECORDING": 20}
    )
    assert overused_servers_in(accounts) == []
