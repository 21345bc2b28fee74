"""A partner's digest stays small whatever its size: the 20 most urgent items, counts by section
and links to the renewals dashboard and its CSV; and each day only what is new since the last
digest is looked at and recorded."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db.models.signals import post_init
from django.utils import timezone

from lifecycle.digests import DIGEST_LISTED, send_partner_digests
from lifecycle.models import Digest, Reminder, ToldThrough
from orders.models import Order
from smartaccounts.models import License

from ..conftest import api_client_for
from ..orders.payloads import URL, order_body
from .conftest import at

pytestmark = pytest.mark.django_db

DASHBOARD = "https://licensing.example.test/renewals/"


def care_ending(account, product, days: list[float]) -> None:
    """Active perpetual licenses whose care ends `days` after START, added two hours ago."""
    added = timezone.now() - timedelta(hours=2)
    License.objects.bulk_create(
        License(
            account=account,
            product=product,
            kind="perpetual",
            state="active",
            quantity=3,
            care_ends_at=at(d),
            created_at=added,
        )
        for d in days
    )


class LicensesLoaded:
    """Counts the License rows made into objects while it is open."""

    def __enter__(self) -> "LicensesLoaded":
        self.count = 0
        post_init.connect(self._seen, sender=License)
        return self

    def __exit__(self, *exc: object) -> None:
        post_init.disconnect(self._seen, sender=License)

    def _seen(self, **kwargs: object) -> None:
        self.count += 1


def digest_today(partner) -> Digest | None:
    return Digest.objects.filter(partner=partner, day=timezone.now().date()).first()


def test_500_items_make_one_small_digest_listing_the_20_most_urgent(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    care_ending(carol_account, cast.recording, [40 + n / 50 for n in range(500)])
    care_ending(carol_account, cast.console, [3, 5, 6])  # the most urgent

    with django_capture_on_commit_callbacks(execute=True), LicensesLoaded() as loaded:
        assert send_partner_digests(now=timezone.now()) == 1

    # Counted in SQL; only what it may list is read (the first 20 terms and the first 20 care).
    assert loaded.count <= 2 * DIGEST_LISTED
    (message,) = mail.outbox
    assert message.to == ["orders@alice.example"]
    assert len(message.message().as_bytes()) < 100_000
    content = digest_today(cast.alice_reseller).content
    assert len(json.dumps(content)) < 20_000
    listed = content["terms_ending"]
    assert len(listed) == 20
    assert [i["days_left"] for i in listed[:3]] == [3, 5, 6]
    assert {i["product"] for i in listed[:3]} == {"Attendant Console"}
    assert content["counts"]["terms_ending"] == 503 and content["more"] == 483
    assert "Terms and care ending soon (503):" in message.body
    assert "- and 483 more" in message.body
    assert f"Renewal opportunities: {DASHBOARD}" in message.body
    assert f"{DASHBOARD}?format=csv" in message.body
    html = message.alternatives[0][0]
    assert f'href="{DASHBOARD}?format=csv"' in html and "and 483 more" in html
    # Every item is told, listed or not, by one watermark per threshold: none comes back
    # tomorrow, and no row per item is written.
    assert ToldThrough.objects.filter(organization=cast.alice_reseller).count() == 5
    assert not Reminder.objects.exists()
    clock.move_to(at(days=1))
    assert send_partner_digests(now=timezone.now()) == 0


def test_a_day_without_new_items_reads_and_writes_nothing_more(
    cast, carol_account, clock, django_capture_on_commit_callbacks
):
    care_ending(carol_account, cast.recording, [40 + n / 500 for n in range(500)])
    assert send_partner_digests(now=timezone.now()) == 1
    told = ToldThrough.objects.count()

    clock.move_to(at(days=1))
    with LicensesLoaded() as loaded:
        assert send_partner_digests(now=timezone.now()) == 0

    assert loaded.count == 0  # not one of the 500 in the window was read again
    assert ToldThrough.objects.count() == told and not Reminder.objects.exists()
    assert Digest.objects.count() == 1

    # One new license: the next digest reads and records it alone.
    care_ending(carol_account, cast.console, [45])
    clock.move_to(at(days=2))
    with LicensesLoaded() as loaded:
        assert send_partner_digests(now=timezone.now()) == 1

    assert loaded.count == 1
    (item,) = digest_today(cast.alice_reseller).content["terms_ending"]
    assert (item["product"], item["threshold"], item["days_left"]) == ("Attendant Console", 60, 43)
    assert ToldThrough.objects.count() == told and not Reminder.objects.exists()

    # Ten days on, the 500 cross 30 days left over two days: each told once more, then quiet.
    counted = 0
    for day, expected in [(9, 0), (10, 1), (11, 1), (12, 0)]:
        clock.move_to(at(days=day))
        assert send_partner_digests(now=timezone.now()) == expected
        if expected:
            counted += digest_today(cast.alice_reseller).content["counts"]["terms_ending"]
    assert counted == 500
    assert ToldThrough.objects.count() == told and not Reminder.objects.exists()


def test_a_license_unlocked_after_its_threshold_is_told_at_its_current_one(
    cast, carol_account, clock
):
    alice = api_client_for(cast.alice_reseller)
    line = {
        "product": "CALL_RECORDING",
        "quantity": 4,
        "kind": "perpetual",
        "care_ends_at": at(days=50).isoformat(),
    }
    body = order_body("LATE", {"name": "Carol Corp", "email": "it@carol.example"}, lines=[line])
    assert alice.post(URL, body, format="json").status_code == 201
    care_ending(carol_account, cast.console, [80])  # so that today's digest is sent
    assert send_partner_digests(now=timezone.now()) == 1  # the order's license is still locked
    assert [i["product"] for i in digest_today(cast.alice_reseller).content["terms_ending"]] == [
        "Attendant Console"
    ]

    clock.move_to(at(days=3))
    order = Order.objects.get(reference="LATE")
    assert alice.post(f"{URL}/{order.pk}/unlock").status_code == 200
    clock.move_to(at(days=4))
    assert send_partner_digests(now=timezone.now()) == 1

    (item,) = digest_today(cast.alice_reseller).content["terms_ending"]
    assert (item["product"], item["threshold"], item["days_left"]) == ("Call Recording", 60, 46)


@pytest.mark.parametrize("items", [3, 300])
def test_sending_the_digest_takes_the_same_queries_for_3_or_300_items(
    cast, carol_account, clock, django_assert_max_num_queries, items
):
    """Counted by section in SQL, only the listed items read, one watermark row per threshold
    written: the queries do not grow with the items."""
    care_ending(carol_account, cast.recording, [20 + n / 20 for n in range(items)])
    care_ending(carol_account, cast.console, [10 + n / 20 for n in range(items)])

    # Three partners looked at (each about 14 queries, one of them counting servers copied
    # onto a machine another server is on), one digest written.
    with django_assert_max_num_queries(46):
        assert send_partner_digests(now=timezone.now()) == 1
    assert digest_today(cast.alice_reseller).content["counts"]["terms_ending"] == 2 * items
