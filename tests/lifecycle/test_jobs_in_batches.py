"""The daily jobs work in batches: with nothing due they cost the same few queries whatever the
number of licenses and servers, and due rows cost queries per batch, not per row."""

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, LicenseRenewal, SmartAccount
from smartaccounts.renewals import expire_due_licenses, renew_due_subscriptions
from smartaccounts.terms import add_months
from tokens.models import Server
from tokens.services import mark_stale_servers

from .conftest import START, at, subscription

pytestmark = pytest.mark.django_db

HINT = settings.LICENSE_REFRESH_HINT
JOBS = (renew_due_subscriptions, expire_due_licenses, mark_stale_servers)


def queries_of_the_jobs() -> int:
    actor = Actor.system("daily jobs")
    with CaptureQueriesContext(connection) as captured:
        for job in JOBS:
            job(now=START, actor=actor)
    return len(captured)


def not_due(account: SmartAccount, product, count: int, name: str = "pbx") -> None:
    """`count` each of: subscriptions that renew themselves later, subscriptions that end later,
    servers that synced a moment ago. The jobs look at all of them and change none."""
    for n in range(count):
        subscription(account, product, at(days=10 + n))
        subscription(account, product, at(days=10 + n), auto_renew=False)
    Server.objects.bulk_create(
        Server(account=account, name=f"{name}-{n}", state="active", last_sync_at=START)
        for n in range(count)
    )


def test_with_nothing_due_the_jobs_cost_the_same_queries_for_5_or_50_rows(cast, carol_account):
    not_due(carol_account, cast.console, 5)
    with_5 = queries_of_the_jobs()
    not_due(carol_account, cast.console, 45, name="more")

    assert queries_of_the_jobs() == with_5 <= 9
    assert not AuditEvent.objects.filter(action__in=["license.renewed", "license.expired"])
    assert not Server.objects.exclude(state="active").exists()


@pytest.mark.parametrize("due", [25, 60])
def test_due_rows_cost_queries_per_batch_not_per_row(cast, carol_account, settings, due):
    settings.DAILY_JOBS_BATCH_SIZE = 10
    renewing = [subscription(carol_account, cast.console, at(days=-1)) for _ in range(due)]
    ending = [
        subscription(carol_account, cast.analytics, at(days=-1), auto_renew=False)
        for _ in range(due)
    ]
    Server.objects.bulk_create(
        Server(account=carol_account, name=f"pbx-{n}", state="active", last_sync_at=at(days=-3))
        for n in range(due)
    )
    not_due(carol_account, cast.recording, 5, name="synced")

    queries = queries_of_the_jobs()

    batches = due // 10 + 1  # the last one short (or empty)
    # Each job: under 10 statements (savepoints included) per batch, whatever its rows; one
    # transaction per row would take over 3 * 4 * due.
    assert queries <= 3 * 10 * batches
    for lic in renewing:
        lic.refresh_from_db()
        assert (lic.state, lic.ends_at) == ("active", add_months(at(days=-1), lic.renewal_months))
    assert LicenseRenewal.objects.filter(source="automatic").count() == due
    assert not License.objects.filter(pk__in=[lic.pk for lic in ending]).exclude(state="expired")
    assert Server.objects.filter(state="stale").count() == due
    for action in ("license.renewed", "license.expired", "server.stale"):
        events = AuditEvent.objects.filter(action=action)
        assert events.count() == due
        assert {e.account_id for e in events} == {carol_account.pk}
        assert {e.actor_label for e in events} == {"daily jobs"}
    expired = AuditEvent.objects.get(action="license.expired", object_id=str(ending[0].pk))
    assert expired.object_type == "smartaccounts.license"
    assert expired.data == {"product": cast.analytics.pk, "ended_at": at(days=-1).isoformat()}
    # Running again finds nothing: the conditional updates and renewal rows are the guard.
    assert queries_of_the_jobs() <= 9
    assert AuditEvent.objects.filter(action="license.renewed").count() == due


def test_a_period_renewed_by_an_order_is_skipped_in_a_batch(cast, carol_account, settings):
    """A license still due although its period has a renewal row: left alone, counted out."""
    settings.DAILY_JOBS_BATCH_SIZE = 2
    odd = subscription(carol_account, cast.console, at(days=-1))
    LicenseRenewal.objects.create(
        license=odd, period_ends_at=odd.ends_at, new_ends_at=at(days=30), source="order"
    )
    others = [subscription(carol_account, cast.console, at(days=-1)) for _ in range(3)]

    assert renew_due_subscriptions(now=START, actor=Actor.system("daily jobs")) == 3

    odd.refresh_from_db()
    assert odd.ends_at == at(days=-1)
    assert not AuditEvent.objects.filter(object_id=str(odd.pk)).exists()
    assert AuditEvent.objects.filter(object_id__in=[str(o.pk) for o in others]).count() == 3
