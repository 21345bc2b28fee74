"""An hourly sync with nothing changed is recorded at most once per SYNC_RECORD_INTERVAL
(6 hours by default); a change in version or state, or a material change in usage, is recorded
on that very sync (a small change in usage waits for the next record). The stale job waits well
past the interval, so a server syncing on time is never flagged."""

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from smartaccounts.actors import Actor
from tokens import services
from tokens.checks import check_stale_threshold
from tokens.models import Server, UsageDay

from .test_activation_api import activate, sync

pytestmark = pytest.mark.django_db

WRITES = ("UPDATE", "INSERT", "DELETE")


@pytest.fixture
def activated(cast, perpetual, pending_server, token_for, device) -> dict[str, Any]:
    response = activate(device, token_for(pending_server, cast.recording, 20))
    assert response.status_code == 201, response.content
    return response.json()


def writes_of_sync(device, credential: str, at: datetime, **report: Any) -> list[str]:
    with time_machine.travel(at, tick=False), CaptureQueriesContext(connection) as queries:
        response = sync(device, credential, **report)
    assert response.status_code == 200, response.content
    # (The hot path's server-bound query is logged without its text on PostgreSQL.)
    statements = [q["sql"] or "" for q in queries.captured_queries]
    return [sql for sql in statements if sql.lstrip().startswith(WRITES)]


def test_the_default_interval_is_six_hours(settings):
    assert timedelta(hours=6) == settings.SYNC_RECORD_INTERVAL


def test_an_hourly_sync_with_nothing_changed_writes_once_every_six_hours(
    activated, pending_server, device
):
    start = timezone.now() + timedelta(minutes=1)
    written = [
        hour
        for hour in range(25)
        if writes_of_sync(device, activated["credential"], start + timedelta(hours=hour))
    ]

    # The first sync records itself; then only when the last record is 6 hours old.
    assert written == [0, 6, 12, 18, 24]
    server = Server.objects.get(pk=pending_server.pk)
    assert server.last_sync_at == start + timedelta(hours=24)


@pytest.mark.parametrize(
    "report",
    [
        {"usage": {"CALL_RECORDING": 7}},
        {"version": "W27"},
    ],
    ids=["usage", "version"],
)
def test_a_changed_report_is_recorded_on_that_sync(activated, pending_server, device, report):
    start = timezone.now() + timedelta(minutes=1)
    assert writes_of_sync(device, activated["credential"], start)
    assert not writes_of_sync(device, activated["credential"], start + timedelta(hours=1))

    changed_at = start + timedelta(hours=2)
    assert writes_of_sync(device, activated["credential"], changed_at, **report)

    server = Server.objects.get(pk=pending_server.pk)
    # A usage-only write leaves last-seen (an indexed column) to the 6-hourly record.
    assert server.last_sync_at == (start if "usage" in report else changed_at)
    assert server.reported_usage == report.get("usage", {})
    assert server.reported_version == report.get("version", "W26")
    # Reported again unchanged an hour later: nothing more is written.
    later = changed_at + timedelta(hours=1)
    assert not writes_of_sync(device, activated["credential"], later, **report)


def test_a_stale_server_is_revived_on_its_next_sync(activated, pending_server, device):
    start = timezone.now() + timedelta(minutes=1)
    assert writes_of_sync(device, activated["credential"], start)
    Server.objects.filter(pk=pending_server.pk).update(state=Server.State.STALE)

    assert writes_of_sync(device, activated["credential"], start + timedelta(hours=1))
    assert Server.objects.get(pk=pending_server.pk).state == Server.State.ACTIVE


def test_the_stale_job_never_flags_a_server_that_syncs_hourly(activated, pending_server, device):
    start = timezone.now() + timedelta(minutes=1)
    system = Actor.system("tests")
    for hour in range(60):
        now = start + timedelta(hours=hour)
        writes_of_sync(device, activated["credential"], now)
        # Just before its next record, the last recorded sync is 5 hours and more old.
        assert services.mark_stale_servers(now=now + timedelta(minutes=59), actor=system) == 0
    assert Server.objects.get(pk=pending_server.pk).state == Server.State.ACTIVE


def test_the_stale_threshold_must_exceed_the_record_interval_by_a_refresh_period(settings):
    assert check_stale_threshold() == []

    settings.SYNC_RECORD_INTERVAL = timedelta(hours=30)
    settings.LICENSE_REFRESH_HINT = timedelta(hours=12)  # stale after 36 h < 30 h + 12 h
    errors = check_stale_threshold()

    assert [e.id for e in errors] == ["tokens.E001"]


def test_the_server_page_says_the_sync_shown_is_the_last_recorded_one(
    cast, activated, pending_server
):
    client = Client()
    client.force_login(cast.carol_admin)

    response = client.get(reverse("tokens:server", args=[pending_server.pk]))

    assert response.status_code == 200
    assert "Last recorded sync" in response.content.decode()


def test_a_small_change_in_usage_waits_for_the_next_record(activated, pending_server, device):
    credential, start = activated["credential"], timezone.now() + timedelta(minutes=1)
    assert writes_of_sync(device, credential, start, usage={"CALL_RECORDING": 10})

    # 10 -> 11 -> 9: within 10% (or by 1) of what was recorded, and no over-use either way.
    for hour, used in ((1, 11), (2, 9), (3, 11)):
        at = start + timedelta(hours=hour)
        assert not writes_of_sync(device, credential, at, usage={"CALL_RECORDING": used})
    assert Server.objects.get(pk=pending_server.pk).reported_usage == {"CALL_RECORDING": 10}

    # The 6-hourly record takes the latest report with it.
    at = start + timedelta(hours=6)
    assert writes_of_sync(device, credential, at, usage={"CALL_RECORDING": 11})
    server = Server.objects.get(pk=pending_server.pk)
    assert (server.reported_usage, server.last_sync_at) == ({"CALL_RECORDING": 11}, at)


def test_a_material_change_in_usage_is_written_at_once_without_touching_last_seen(
    activated, pending_server, device
):
    credential, start = activated["credential"], timezone.now() + timedelta(minutes=1)
    assert writes_of_sync(device, credential, start, usage={"CALL_RECORDING": 10})

    at = start + timedelta(hours=1)
    writes = writes_of_sync(device, credential, at, usage={"CALL_RECORDING": 13})

    server_updates = [sql for sql in writes if '"tokens_server"' in sql]
    assert len(server_updates) == 1
    # No indexed column in the row's update: PostgreSQL can rewrite it in place.
    assert "reported_usage" in server_updates[0]
    assert "last_sync_at" not in server_updates[0]
    assert "overused" not in server_updates[0]
    server = Server.objects.get(pk=pending_server.pk)
    assert (server.reported_usage, server.last_sync_at) == ({"CALL_RECORDING": 13}, start)


def test_going_over_what_the_server_holds_is_written_at_once_however_small(
    activated, pending_server, device
):
    credential, start = activated["credential"], timezone.now() + timedelta(minutes=1)
    assert writes_of_sync(device, credential, start, usage={"CALL_RECORDING": 20})

    # The server holds 20: one more is a small change, but it changes the verdict.
    assert writes_of_sync(
        device, credential, start + timedelta(hours=1), usage={"CALL_RECORDING": 21}
    )
    server = Server.objects.get(pk=pending_server.pk)
    assert server.overused
    assert server.reported_usage == {"CALL_RECORDING": 21}
    # And back within what it holds: the verdict changes again.
    assert writes_of_sync(
        device, credential, start + timedelta(hours=2), usage={"CALL_RECORDING": 20}
    )
    assert not Server.objects.get(pk=pending_server.pk).overused


def test_each_day_keeps_the_peak_of_what_was_recorded(activated, pending_server, device):
    credential = activated["credential"]
    day = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0) + timedelta(days=1)
    writes_of_sync(device, credential, day, usage={"CALL_RECORDING": 10, "ATTENDANT_CONSOLE": 2})
    writes_of_sync(device, credential, day + timedelta(hours=1), usage={"CALL_RECORDING": 16})
    writes_of_sync(device, credential, day + timedelta(hours=2), usage={"CALL_RECORDING": 12})
    writes_of_sync(device, credential, day + timedelta(days=1), usage={"CALL_RECORDING": 5})

    days = dict(UsageDay.objects.filter(server=pending_server).values_list("day", "peaks"))
    assert days == {
        day.date(): {"CALL_RECORDING": 16, "ATTENDANT_CONSOLE": 2},
        (day + timedelta(days=1)).date(): {"CALL_RECORDING": 5},
    }
