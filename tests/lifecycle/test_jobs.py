"""Each daily job and its idempotency: expiry, stale servers and back, the management command
and the Celery task."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from lifecycle import tasks
from lifecycle.services import run_daily_jobs
from smartaccounts.models import AuditEvent, License, LicenseRenewal
from tokens.models import Server

from ..factories import LicenseFactory, ServerFactory
from .conftest import START, at, entitlements, subscription, sync

pytestmark = pytest.mark.django_db

HINT = settings.LICENSE_REFRESH_HINT


def events(action: str, server: Server) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_id=str(server.pk)))


# --- Expiry ------------------------------------------------------------------------------------


def test_an_expired_subscription_leaves_the_document_and_the_rest_stays(
    cast, carol_account, clock, online_server, device
):
    perpetual = LicenseFactory(
        account=carol_account, product=cast.recording, kind="perpetual", quantity=50
    )
    ending = subscription(carol_account, cast.console, at(days=10), auto_renew=False)
    server, credential = online_server((perpetual, 20), (ending, 4))
    assert set(entitlements(sync(device, credential))) == {str(perpetual.pk), str(ending.pk)}

    clock.move_to(at(days=10, hours=1))
    counts = run_daily_jobs()

    assert counts["expired"] == 1
    ending.refresh_from_db()
    assert ending.state == License.State.EXPIRED
    document = entitlements(sync(device, credential))
    assert set(document) == {str(perpetual.pk)}
    assert document[str(perpetual.pk)]["quantity"] == 20
    assert run_daily_jobs()["expired"] == 0
    assert AuditEvent.objects.filter(action="license.expired").count() == 1


def test_nothing_expires_before_its_end(cast, carol_account, clock):
    lic = subscription(carol_account, cast.console, at(days=10), auto_renew=False)

    clock.move_to(at(days=10) - timedelta(seconds=1))
    assert run_daily_jobs()["expired"] == 0

    lic.refresh_from_db()
    assert lic.state == License.State.ACTIVE


def test_locked_and_revoked_licenses_are_left_alone(cast, carol_account, clock):
    locked = subscription(carol_account, cast.console, at(days=1), state="locked", auto_renew=False)
    revoked = subscription(carol_account, cast.console, at(days=1), state="revoked")

    clock.move_to(at(days=2))
    counts = run_daily_jobs()

    assert (counts["renewed"], counts["expired"]) == (0, 0)
    assert set(License.objects.values_list("state", flat=True)) == {"locked", "revoked"}
    assert {locked.pk, revoked.pk} == set(License.objects.values_list("pk", flat=True))
    assert not LicenseRenewal.objects.exists()


# --- Stale servers -----------------------------------------------------------------------------


def test_a_silent_server_goes_stale_once_and_a_sync_brings_it_back(
    cast, carol_account, clock, online_server, device
):
    perpetual = LicenseFactory(account=carol_account, product=cast.recording, kind="perpetual")
    server, credential = online_server((perpetual, 5))
    assert sync(device, credential).status_code == 200  # its first sync, at START
    assert len(events("server.first_sync", server)) == 1

    clock.move_to(START + 3 * HINT - timedelta(minutes=1))
    assert run_daily_jobs()["stale"] == 0
    server.refresh_from_db()
    assert server.state == Server.State.ACTIVE

    clock.move_to(START + 3 * HINT + timedelta(minutes=1))
    assert run_daily_jobs()["stale"] == 1
    server.refresh_from_db()
    assert server.state == Server.State.STALE and server.last_sync_at == START
    (stale,) = events("server.stale", server)
    assert stale.actor_label == "daily jobs" and stale.account == carol_account
    assert stale.data == {"last_sync_at": START.isoformat()}

    assert run_daily_jobs()["stale"] == 0  # running again changes nothing
    assert len(events("server.stale", server)) == 1

    clock.move_to(START + 4 * HINT)
    response = sync(device, credential, REMOTE_ADDR="192.0.2.44")

    assert response.status_code == 200
    server.refresh_from_db()
    assert server.state == Server.State.ACTIVE and server.last_sync_at == START + 4 * HINT
    (back,) = events("server.back_online", server)
    assert back.address == "192.0.2.44" and back.account == carol_account
    assert back.actor_label == f"server pbx-1 ({server.pk})"
    assert len(events("server.first_sync", server)) == 1
    assert run_daily_jobs()["stale"] == 0

    # Silent again: stale again, reported as a new event.
    clock.move_to(START + 8 * HINT)
    assert run_daily_jobs()["stale"] == 1
    assert len(events("server.stale", server)) == 2


def test_a_server_stale_before_its_first_sync_is_reported_back_online(
    cast, carol_account, clock, online_server, device
):
    perpetual = LicenseFactory(account=carol_account, product=cast.recording, kind="perpetual")
    server, credential = online_server((perpetual, 5))
    clock.move_to(START + 4 * HINT)
    run_daily_jobs()

    assert sync(device, credential).status_code == 200

    server.refresh_from_db()
    assert server.state == Server.State.ACTIVE
    assert len(events("server.first_sync", server)) == 1
    assert len(events("server.back_online", server)) == 1


def test_only_online_servers_go_stale(cast, carol_account, clock):
    long_ago = START - timedelta(days=30)
    for state in ("pending", "offline", "deactivated", "stale"):
        ServerFactory(account=carol_account, name=state, state=state, last_sync_at=long_ago)

    assert run_daily_jobs()["stale"] == 0

    assert dict(Server.objects.values_list("name", "state")) == {
        "pending": "pending",
        "offline": "offline",
        "deactivated": "deactivated",
        "stale": "stale",
    }
    assert not AuditEvent.objects.filter(action="server.stale").exists()


# --- The management command and the Celery task ------------------------------------------------


@pytest.fixture
def due(cast, carol_account):
    """One subscription to renew, one to expire, one silent server, at START + 10 days."""
    renewing = subscription(carol_account, cast.console, at(days=10))
    ending = subscription(carol_account, cast.analytics, at(days=10), auto_renew=False)
    silent = ServerFactory(account=carol_account, name="silent", state="active", last_sync_at=START)
    return renewing, ending, silent


def test_the_management_command_runs_the_jobs_and_prints_the_counts(due, clock):
    renewing, ending, silent = due
    clock.move_to(at(days=10, hours=1))
    out = StringIO()

    call_command("run_daily_jobs", stdout=out)

    assert out.getvalue().strip() == (
        "Renewed 1, expired 1, stale servers 1, digests 1, customer reminders 0."
    )
    renewing.refresh_from_db()
    ending.refresh_from_db()
    silent.refresh_from_db()
    assert (renewing.state, ending.state, silent.state) == ("active", "expired", "stale")
    assert renewing.ends_at == datetime(2032, 3, 20, 6, tzinfo=UTC)

    again = StringIO()
    call_command("run_daily_jobs", stdout=again)
    assert again.getvalue().strip() == (
        "Renewed 0, expired 0, stale servers 0, digests 0, customer reminders 0."
    )


def test_the_celery_task_runs_the_jobs_and_returns_the_counts(due, clock):
    renewing, ending, silent = due
    clock.move_to(at(days=10, hours=1))

    result = tasks.run_daily_jobs.delay()

    assert result.get() == {
        "renewed": 1,
        "expired": 1,
        "stale": 1,
        "digests": 1,
        "reminders": 0,
    }
    ending.refresh_from_db()
    silent.refresh_from_db()
    assert (ending.state, silent.state) == ("expired", "stale")
    assert LicenseRenewal.objects.get().license == renewing
    assert tasks.run_daily_jobs.delay().get() == {
        "renewed": 0,
        "expired": 0,
        "stale": 0,
        "digests": 0,
        "reminders": 0,
    }


def test_celery_beat_runs_the_daily_jobs_every_day():
    (entry,) = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.run_daily_jobs.name
    ]
    assert tasks.run_daily_jobs.name == "lifecycle.tasks.run_daily_jobs"
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {0}
