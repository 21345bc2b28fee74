"""The daily jobs forget what nothing will look at again: digests after DIGEST_RETENTION (with the
over-use reminders they recorded), customers' reminder e-mails after REMINDER_RETENTION; the
watermarks of what was told (one per organization and threshold) and audit events stay; a
server's recorded use per day goes after USAGE_HISTORY_DAYS (but for its latest such day)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from lifecycle import tasks
from lifecycle.models import Digest, ExpiryNotice, Reminder, ToldThrough
from lifecycle.services import prune_told_records
from smartaccounts.models import AuditEvent
from tokens.models import UsageDay

from ..factories import ServerFactory, ToldThroughFactory
from .conftest import START

pytestmark = pytest.mark.django_db


def days_ago(days: int):
    return START - timedelta(days=days)


def digest(partner, age: int, *told: tuple[str, str, str]) -> Digest:
    sent = Digest.objects.create(
        partner=partner, day=days_ago(age).date(), content={}, created_at=days_ago(age)
    )
    Reminder.objects.bulk_create(
        Reminder(partner=partner, subject_id=s, reason=r, marker=m, digest=sent) for s, r, m in told
    )
    return sent


def notice(customer, age: int) -> ExpiryNotice:
    return ExpiryNotice.objects.create(
        customer=customer, day=days_ago(age).date(), created_at=days_ago(age)
    )


@pytest.fixture
def history(cast, carol_account):
    """A partner's and a customer's told records of every age."""
    alice = cast.alice_reseller
    digest(alice, 200, ("old", "overuse", "60:CALL_RECORDING"), ("old-2", "overuse", "1:X"))
    recent = digest(
        alice,
        100,
        ("srv-1", "overuse", "60:CALL_RECORDING"),  # stays with its digest
        ("srv-2", "overuse", "5:ATTENDANT_CONSOLE"),
        ("srv-3", "overuse", "0:BILLING"),
    )
    notice(cast.carol_customer, 91)  # goes
    kept_notice = notice(cast.carol_customer, 89)
    ToldThroughFactory(organization=cast.carol_customer, told_at=days_ago(400))
    return recent, kept_notice


def test_pruning_keeps_what_a_digest_or_reminder_still_needs(cast, history, settings):
    settings.DAILY_JOBS_BATCH_SIZE = 1  # several batches of each kind
    recent, kept_notice = history
    events = AuditEvent.objects.count()

    # The old digest and its 2 reminders + the old notice.
    assert prune_told_records(now=START) == 3 + 1

    assert list(Digest.objects.all()) == [recent]
    assert sorted(Reminder.objects.values_list("subject_id", flat=True)) == [
        "srv-1",
        "srv-2",
        "srv-3",
    ]
    assert list(ExpiryNotice.objects.all()) == [kept_notice]
    assert ToldThrough.objects.count() == 1  # a watermark is never pruned
    assert AuditEvent.objects.count() == events
    assert prune_told_records(now=START) == 0  # running again: nothing more


def test_the_daily_command_prunes_and_says_so(history, clock):
    out = StringIO()
    call_command("run_daily_jobs", stdout=out)

    assert out.getvalue().strip().splitlines()[-1] == "Pruned 4 old digests and reminders."
    assert len(Reminder.objects.all()) == 3


def test_celery_beat_prunes_every_day_after_the_daily_jobs(history, clock):
    task = tasks.prune_told_records.name
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task]
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {30}

    assert tasks.prune_told_records.delay().get() == 4
    assert tasks.prune_told_records.delay().get() == 0


def test_a_servers_recorded_use_is_kept_for_its_chart_then_pruned(cast, carol_account, settings):
    settings.USAGE_HISTORY_DAYS = 31
    server, steady = ServerFactory(account=carol_account), ServerFactory(account=carol_account)
    for age in (40, 32, 30, 1):
        UsageDay.objects.create(server=server, day=days_ago(age).date(), peaks={"X": age})
    # A server steady for months: its one old day is what its chart carries forward.
    UsageDay.objects.create(server=steady, day=days_ago(90).date(), peaks={"X": 90})

    assert prune_told_records(now=START) == 1

    kept = UsageDay.objects.filter(server=server).order_by("day").values_list("peaks", flat=True)
    # The latest day before the cutoff stays with the days inside the window.
    assert list(kept) == [{"X": 32}, {"X": 30}, {"X": 1}]
    assert UsageDay.objects.filter(server=steady).count() == 1
