"""The daily jobs forget what nothing will look at again: partners' reminders of ends long past,
digests after DIGEST_RETENTION, customers' reminder e-mails after REMINDER_RETENTION; audit
events stay."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from lifecycle import tasks
from lifecycle.models import Digest, ExpiryNotice, ExpiryNoticeLine, Reminder
from lifecycle.services import prune_told_records
from smartaccounts.models import AuditEvent

from ..factories import LicenseFactory
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


def notice(customer, age: int, lic) -> ExpiryNotice:
    sent = ExpiryNotice.objects.create(
        customer=customer, day=days_ago(age).date(), created_at=days_ago(age)
    )
    ExpiryNoticeLine.objects.create(
        notice=sent,
        license=lic,
        what="care",
        ends_at=days_ago(age - 30),
        threshold=30,
        days_left=30,
    )
    return sent


@pytest.fixture
def history(cast, carol_account):
    """A partner's and a customer's told records of every age."""
    lic = LicenseFactory(account=carol_account, product=cast.recording)
    alice = cast.alice_reseller

    def day(days: int) -> str:
        return days_ago(days).date().isoformat()

    digest(alice, 200, ("old", "stale", "2030-08-01T00:00:00+00:00"), ("lic-a", "care", "x"))
    recent = digest(
        alice,
        100,
        ("lic-b", "care", f"{day(91)}:7"),  # ended 91 days ago: goes
        ("lic-c", "term", f"{day(89)}:7"),  # ended 89 days ago: stays
        ("lic-d", "expired", day(95)),  # goes
        ("lic-e", "care", f"{(START + timedelta(days=20)).date()}:30"),  # still ahead: stays
        ("srv", "stale", "2031-01-01T00:00:00+00:00"),  # lasting: stays with its digest
    )
    notice(cast.carol_customer, 91, lic)  # goes, with its line
    kept_notice = notice(cast.carol_customer, 89, lic)
    return recent, kept_notice


def test_pruning_keeps_what_a_digest_or_reminder_still_needs(cast, history, settings):
    settings.DAILY_JOBS_BATCH_SIZE = 1  # several batches of each kind
    recent, kept_notice = history
    events = AuditEvent.objects.count()

    # 2 dated reminders + the old digest and its 2 reminders + the old notice and its line.
    assert prune_told_records(now=START) == 2 + 3 + 2

    assert list(Digest.objects.all()) == [recent]
    assert sorted(Reminder.objects.values_list("subject_id", flat=True)) == [
        "lic-c",
        "lic-e",
        "srv",
    ]
    assert list(ExpiryNotice.objects.all()) == [kept_notice]
    assert list(ExpiryNoticeLine.objects.values_list("notice", flat=True)) == [kept_notice.pk]
    assert AuditEvent.objects.count() == events
    assert prune_told_records(now=START) == 0  # running again: nothing more


def test_the_daily_command_prunes_and_says_so(history, clock):
    out = StringIO()
    call_command("run_daily_jobs", stdout=out)

    assert out.getvalue().strip().splitlines()[-1] == "Pruned 7 old digests and reminders."
    assert len(Reminder.objects.all()) == 3


def test_celery_beat_prunes_every_day_after_the_daily_jobs(history, clock):
    task = tasks.prune_told_records.name
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task]
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {30}

    assert tasks.prune_told_records.delay().get() == 7
    assert tasks.prune_told_records.delay().get() == 0
