"""Possible clones (issue 20, item 10): two servers in use of one account bound to the same
machine fingerprint are named on the account's Overview and, once, in the reseller's digest,
counted in SQL with only the first few read."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lifecycle.digests import DIGEST_LISTED, build_digest, send_partner_digests
from lifecycle.models import Digest
from tokens.models import Server

from ..factories import ServerFactory
from .conftest import START, at

pytestmark = pytest.mark.django_db


def on_machine(account, name: str, fingerprint: str, activated_days: float, **fields) -> Server:
    fields.setdefault("state", Server.State.ACTIVE)
    return ServerFactory(
        account=account,
        name=name,
        fingerprint=fingerprint,
        activated_at=at(activated_days),
        last_sync_at=START,
        **fields,
    )


@pytest.fixture
def pair(carol_account, dave_account):
    """Carol's PBX-Milan and its copy PBX-Copy on machine fp-1; PBX-Rome alone on fp-2; an old
    deactivated server and a pending one on fp-1 count for nothing; Dave (Bob's customer) has a
    server on fp-1 too, which is no business of Carol's pages or Alice's digest."""
    milan = on_machine(carol_account, "PBX-Milan", "fp-1", -10)
    copy = on_machine(carol_account, "PBX-Copy", "fp-1", -1, state=Server.State.STALE)
    on_machine(carol_account, "PBX-Rome", "fp-2", -5)
    on_machine(carol_account, "Old", "fp-1", -20, state=Server.State.DEACTIVATED)
    ServerFactory(account=carol_account, name="New")  # pending: no fingerprint yet
    on_machine(dave_account, "Dave-Box", "fp-1", -2)
    return milan, copy


def test_the_overview_names_servers_on_the_same_machine(cast, carol_account, client, pair):
    milan, copy = pair
    client.force_login(cast.carol_admin)

    response = client.get(f"/accounts/{carol_account.pk}/overview/")

    o = response.context["overview"]
    assert [[s.name for s in group] for group in o.same_machine] == [["PBX-Copy", "PBX-Milan"]]
    assert o.attention_count >= 2
    page = response.content.decode()
    section = page.split('id="possible-clones"')[1].split("</ul>")[0]
    assert f'href="/servers/{copy.pk}/"' in section and f'href="/servers/{milan.pk}/"' in section
    assert "in use on the same machine" in section
    assert "Dave-Box" not in page


def test_the_overview_names_nothing_for_servers_on_machines_of_their_own(
    cast, carol_account, client
):
    on_machine(carol_account, "PBX-Milan", "fp-1", -10)
    on_machine(carol_account, "Old", "fp-1", -20, state=Server.State.DEACTIVATED)
    client.force_login(cast.carol_admin)

    response = client.get(f"/accounts/{carol_account.pk}/overview/")

    assert response.context["overview"].same_machine == []
    assert 'id="possible-clones"' not in response.content.decode()


def test_the_digest_names_the_copy_once(
    cast, carol_account, pair, clock, django_capture_on_commit_callbacks
):
    _, copy = pair

    with django_capture_on_commit_callbacks(execute=True):
        assert send_partner_digests(now=START) >= 1

    content = Digest.objects.get(partner=cast.alice_reseller).content
    assert content["counts"]["same_machine"] == 1
    [item] = content["same_machine"]
    assert (item["customer"], item["server"], item["twin"]) == (
        "Carol Corp",
        "PBX-Copy",
        "PBX-Milan",
    )
    message = next(m for m in mail.outbox if "orders@alice.example" in m.to)
    assert "Possible clones: servers in use on the same machine:" in message.body
    assert f"/servers/{copy.pk}/" in message.body
    assert f'/servers/{copy.pk}/">PBX-Copy</a>' in message.alternatives[0][0]
    # Told once: the next day's digest does not name it again.
    clock.move_to(at(days=1))
    assert build_digest(cast.alice_reseller, at(days=1)).counts["same_machine"] == 0
    # Dave's server shares the fingerprint, but not an account: Bob hears of nothing.
    assert build_digest(cast.bob_reseller, START).counts["same_machine"] == 0


def test_the_digest_counts_many_copies_and_reads_only_the_first_few(
    cast, carol_account, django_assert_max_num_queries
):
    def copies(account, prefix: str, n: int) -> None:
        on_machine(account, f"{prefix}-orig", f"{prefix}-fp", -20)
        for k in range(n):
            on_machine(account, f"{prefix}-{k:03}", f"{prefix}-fp", -1 - k / 100)

    copies(carol_account, "few", 2)
    with CaptureQueriesContext(connection) as few:
        small = build_digest(cast.alice_reseller, START)
    copies(carol_account, "many", 60)
    with django_assert_max_num_queries(len(few)):
        large = build_digest(cast.alice_reseller, START)

    assert small.counts["same_machine"] == 2
    assert large.counts["same_machine"] == 62
    assert len(large.sections["same_machine"]) == DIGEST_LISTED
    assert {i["twin"] for i in large.sections["same_machine"]} <= {"few-orig", "many-orig"}


def test_a_copy_activated_before_the_lookback_is_not_news(cast, carol_account):
    on_machine(carol_account, "PBX-Milan", "fp-1", -100)
    on_machine(carol_account, "PBX-Copy", "fp-1", -90)

    assert build_digest(cast.alice_reseller, START + timedelta(hours=1)).counts["same_machine"] == 0
