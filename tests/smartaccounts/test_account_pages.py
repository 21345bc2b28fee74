"""Portal pages of a Smart Account and an organization: where each role lands, the licenses
page (one row per application, expandable to its licenses), the license-detail fragment and
the team page (invite, change role, deactivate, keep an admin) (STYLE 12, S9), and a bounded
number of queries on a large account."""

import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags
from rest_framework.test import APIClient

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, SmartAccount, User
from tokens import services

from ..factories import (
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ServerFactory,
    UserFactory,
)
from ..load import LARGE, build_load

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory
SITE = "https://licensing.example.test"
INVITATION_LINK = re.compile(re.escape(SITE) + r"(/invitation/[^/\s\"<>]+/[^/\s\"<>]+/)")
MAX_QUERIES = 20


# --- Helpers ---------------------------------------------------------------------------------


def squash(html: str) -> str:
    return " ".join(strip_tags(html).split())


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pool_rows(html: str) -> dict[str, list[str]]:
    """{application name: [unit, total, assigned, available, locked, care, term end]} of the
    licenses table: the first row of each application's <tbody>."""
    rows = {}
    for row in re.findall(r'<tbody class="pool-row">\s*<tr>(.*?)</tr>', html, re.S):
        cells = re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.S)
        name = squash(re.search(r"<strong>(.*?)</strong>", cells[0], re.S).group(1))
        rows[name] = [squash(cell) for cell in cells[1:]]
    return rows


def license_rows(html: str) -> list[list[str]]:
    """The rows of the nested table of licenses (kind, quantity, assigned, state, start, term
    end, care end, order)."""
    nested = re.search(r'<table class="nested[^"]*">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert nested is not None, html
    return [
        [squash(cell) for cell in re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", nested.group(1), re.S)
    ]


def team_emails(html: str) -> list[str]:
    return re.findall(r"<tr>\s*<td>([^<\s]+@[^<\s]+)", html)


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture
def account(cast) -> SmartAccount:
    return cast.carol_customer.smart_account


@pytest.fixture
def licenses(cast, account):
    """Carol's licenses, one application in each situation the page tells apart."""
    now = timezone.now()
    day = timedelta(days=1)
    made = {
        "recording_perpetual": LicenseFactory(
            account=account,
            product=cast.recording,
            quantity=10,
            care_ends_at=now + 300 * day,
            source="PO-100",
        ),
        "recording_subscription": LicenseFactory(
            account=account,
            product=cast.recording,
            kind=License.Kind.SUBSCRIPTION,
            quantity=5,
            ends_at=now + 365 * day,
            care_ends_at=now + 365 * day,
            source="PO-101",
        ),
        "recording_locked": LicenseFactory(
            account=account,
            product=cast.recording,
            quantity=20,
            state=License.State.LOCKED,
            source="PO-102",
        ),
        "recording_expired": LicenseFactory(
            account=account,
            product=cast.recording,
            kind=License.Kind.SUBSCRIPTION,
            quantity=7,
            state=License.State.EXPIRED,
            ends_at=now - day,
            source="PO-099",
        ),
        "recording_revoked": LicenseFactory(
            account=account,
            product=cast.recording,
            quantity=3,
            state=License.State.REVOKED,
            source="PO-098",
        ),
        "console": LicenseFactory(
            account=account,
            product=cast.console,
            quantity=5,
            care_ends_at=now + 30 * day,
            source="PO-200",
        ),
        "analytics": LicenseFactory(
            account=account,
            product=cast.analytics,
            kind=License.Kind.SUBSCRIPTION,
            quantity=8,
            ends_at=now + 100 * day,
            care_ends_at=now - day,
            source="PO-300",
        ),
        "billing_locked": LicenseFactory(
            account=account,
            product=cast.billing,
            quantity=7,
            state=License.State.LOCKED,
            source="PO-400",
        ),
        # Bob's customer: must never show or count on Carol's pages.
        "dave": LicenseFactory(
            account=cast.dave_customer.smart_account,
            product=cast.recording,
            quantity=99,
            source="BOB-PO-1",
        ),
    }
    server = ServerFactory(account=account, name="PBX-Milan")
    services.assign_capacity(
        server=server, product=cast.recording, quantity=4, actor=Actor.system("tests")
    )
    return made


# --- Landing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["carol_admin", "carol_viewer"])
def test_a_customer_user_lands_on_its_account_page(cast, account, licenses, who):
    client = client_for(getattr(cast, who))

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/{account.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Call Recording" in pool_rows(page)
    assert "Switch customer" not in page


@pytest.mark.parametrize("who", ["alice_admin", "alice_viewer", "bob_admin", "distributor_admin"])
def test_a_partner_lands_on_the_customer_picker(cast, who):
    response = client_for(getattr(cast, who)).get("/")

    assert response.status_code == 302
    assert response["Location"] == "/customers/"


def test_a_customer_without_a_smart_account_lands_on_a_placeholder(cast):
    erin = CustomerFactory(name="Erin Ltd", smart_account=None)
    user = UserFactory(organization=erin)

    response = client_for(user).get("/")

    assert response.status_code == 200
    assert "Erin Ltd" in response.content.decode()


# --- Licenses page ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who", ["carol_admin", "carol_viewer", "alice_member", "distributor_admin"]
)
def test_the_licenses_page_shows_one_row_per_application(cast, account, licenses, who):
    response = client_for(getattr(cast, who)).get(f"/accounts/{account.pk}/")

    assert response.status_code == 200
    page = response.content.decode()

    def day(name: str, field: str = "care_ends_at") -> str:
        return getattr(licenses[name], field).strftime("%Y-%m-%d")

    # The care cell names the nearest care end; the last cell the nearest term end.
    assert pool_rows(page) == {
        "Attendant Console": ["seats", "5", "0", "5", "0", f"expiring until {day('console')}", "—"],
        "Call Analytics": [
            "users",
            "8",
            "0",
            "8",
            "0",
            f"expired ended {day('analytics')}",
            day("analytics", "ends_at"),
        ],
        "Call Billing": ["users", "0", "0", "0", "7", "—", "—"],
        # Active only: 10 perpetual + 5 subscription; 20 locked apart; expired and revoked out.
        "Call Recording": [
            "channels",
            "15",
            "4",
            "11",
            "20",
            f"active until {day('recording_perpetual')}",
            day("recording_subscription", "ends_at"),
        ],
    }
    assert list(pool_rows(page)) == sorted(pool_rows(page))
    # Collapsed: no license is listed, only the way to load them.
    assert 'class="nested' not in page
    assert "PO-100" not in page and "BOB-PO-1" not in page
    assert f'hx-get="/accounts/{account.pk}/licenses/CALL_RECORDING/"' in page


def test_partners_see_the_account_in_the_header_with_a_way_to_switch(cast, account, licenses):
    page = client_for(cast.alice_member).get(f"/accounts/{account.pk}/").content.decode()

    header = page.split("</header>")[0]
    assert "Carol Corp" in header
    assert 'href="/customers/">Switch customer</a>' in header
    assert f'href="/accounts/{account.pk}/servers/"' in page
    assert "Read only" not in page


@pytest.mark.parametrize("who", ["carol_viewer", "alice_viewer", "distributor_admin"])
def test_read_only_roles_are_told_so(cast, account, licenses, who):
    page = client_for(getattr(cast, who)).get(f"/accounts/{account.pk}/").content.decode()

    assert "Read only" in page


def test_expand_shows_that_applications_licenses_with_their_order(cast, account, licenses):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/?expand=CALL_RECORDING")

    assert response.status_code == 200
    page = response.content.decode()
    rows = license_rows(page)
    # Revoked licenses are gone for good: not listed.
    assert sorted(row[-1] for row in rows) == ["PO-099", "PO-100", "PO-101", "PO-102"]
    by_order = {row[-1]: row for row in rows}
    assert by_order["PO-100"][:4] == ["Perpetual", "10", "4", "Active"]
    assert by_order["PO-102"][:4] == ["Perpetual", "20", "0", "Locked"]
    assert by_order["PO-101"][0].startswith("Subscription")
    care_end = licenses["recording_perpetual"].care_ends_at.strftime("%Y-%m-%d")
    assert by_order["PO-100"][6] == care_end
    assert page.count('class="nested') == 1
    assert re.search(r"<details open\s", page)
    # Only that application, only this account.
    assert "PO-200" not in page and "BOB-PO-1" not in page


def test_expanding_an_unknown_application_shows_the_rows_only(cast, account, licenses):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/?expand=NOPE")

    assert response.status_code == 200
    assert 'class="nested' not in response.content.decode()
    assert len(pool_rows(response.content.decode())) == 4


def test_the_licenses_page_is_paginated(cast, account):
    for n in range(30):
        LicenseFactory(account=account, product__name=f"App {n:02d}")
    client = client_for(cast.carol_viewer)

    first = pool_rows(client.get(f"/accounts/{account.pk}/").content.decode())
    second_page = client.get(f"/accounts/{account.pk}/?page=2").content.decode()

    assert len(first) == 25
    assert set(first) | set(pool_rows(second_page)) == {f"App {n:02d}" for n in range(30)}
    assert "Page 2 of 2" in second_page


def test_another_tenants_account_is_404(cast, account, licenses):
    dave = cast.dave_customer.smart_account

    assert client_for(cast.bob_admin).get(f"/accounts/{account.pk}/").status_code == 404
    assert client_for(cast.alice_admin).get(f"/accounts/{dave.pk}/").status_code == 404
    assert client_for(cast.carol_admin).get(f"/accounts/{dave.pk}/").status_code == 404
    # Another distributor's reseller, and vendor staff (who use the back office).
    stray = UserFactory(organization=cast.stray_reseller)
    assert client_for(stray).get(f"/accounts/{account.pk}/").status_code == 404
    assert client_for(cast.vendor_staff).get(f"/accounts/{account.pk}/").status_code == 404


@pytest.mark.parametrize("account_id", ["not-a-uuid", str(uuid.UUID(int=1))])
def test_a_bad_account_id_is_404(cast, account_id):
    client = client_for(cast.alice_admin)

    assert client.get(f"/accounts/{account_id}/").status_code == 404
    assert client.get(f"/accounts/{account_id}/licenses/CALL_RECORDING/").status_code == 404


def test_anonymous_visitors_are_sent_to_login(cast, account):
    for path in (f"/accounts/{account.pk}/", f"/accounts/{account.pk}/licenses/CALL_RECORDING/"):
        response = Client().get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/?next="), path


@pytest.mark.parametrize("method", ["post", "put", "delete"])
@pytest.mark.parametrize("suffix", ["", "licenses/CALL_RECORDING/"])
def test_the_licenses_pages_refuse_other_methods(cast, account, licenses, method, suffix):
    response = getattr(client_for(cast.alice_admin), method)(f"/accounts/{account.pk}/{suffix}")

    assert response.status_code == 405


# --- License detail fragment -----------------------------------------------------------------


def test_the_fragment_lists_one_applications_licenses(cast, account, licenses):
    response = client_for(cast.carol_viewer).get(
        f"/accounts/{account.pk}/licenses/CALL_RECORDING/", HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response.templates[0].name == "smartaccounts/_license_detail.html"
    page = response.content.decode()
    assert "<html" not in page and "<header" not in page
    rows = license_rows(page)
    assert {row[-1]: row[3] for row in rows} == {
        "PO-099": "Expired",
        "PO-100": "Active",
        "PO-101": "Active",
        "PO-102": "Locked",
    }
    assert "BOB-PO-1" not in page and "PO-200" not in page


def test_the_fragment_of_an_application_the_account_lacks_is_empty(cast, account, licenses):
    other = LicenseFactory(account=cast.dave_customer.smart_account, product__code="ONLY_DAVE")

    response = client_for(cast.alice_member).get(
        f"/accounts/{account.pk}/licenses/{other.product.code}/"
    )

    assert response.status_code == 200
    assert license_rows(response.content.decode()) == [["No licenses."]]


def test_the_fragment_of_an_unknown_application_is_404(cast, account, licenses):
    response = client_for(cast.alice_member).get(f"/accounts/{account.pk}/licenses/NOPE/")

    assert response.status_code == 404


def test_the_fragment_of_another_tenants_account_is_404(cast, account, licenses):
    dave = cast.dave_customer.smart_account

    bob_on_carol = client_for(cast.bob_admin).get(
        f"/accounts/{account.pk}/licenses/CALL_RECORDING/"
    )
    alice_on_dave = client_for(cast.alice_admin).get(
        f"/accounts/{dave.pk}/licenses/CALL_RECORDING/"
    )

    assert bob_on_carol.status_code == 404
    assert alice_on_dave.status_code == 404
    assert "BOB-PO-1" not in alice_on_dave.content.decode()


# --- Team page -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice_admin", "alice_member", "alice_viewer"])
def test_the_team_page_lists_the_organizations_people_only(cast, who):
    response = client_for(getattr(cast, who)).get("/team/")

    assert response.status_code == 200
    page = response.content.decode()
    assert team_emails(page) == [
        "alice@alice.example",
        "member@alice.example",
        "viewer@alice.example",
    ]
    assert "bob@bob.example" not in page and "carol@carol.example" not in page
    admin_tools = "Invite someone" in page and "/deactivate/" in page and "/role/" in page
    assert admin_tools == (who == "alice_admin")


def test_a_customer_admin_sees_its_own_team(cast):
    page = client_for(cast.carol_admin).get("/team/").content.decode()

    assert team_emails(page) == ["carol@carol.example", "viewer@carol.example"]


def test_an_admin_invites_by_email(cast, client, django_capture_on_commit_callbacks):
    client.force_login(cast.alice_admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/team/",
            {"email": " New.Person@Alice.Example ", "full_name": "New Person", "role": "member"},
        )

    assert response.status_code == 302
    assert response["Location"] == "/team/"
    user = User.objects.get(email="new.person@alice.example")
    assert user.organization == cast.alice_reseller
    assert user.role == User.Role.MEMBER
    assert user.full_name == "New Person"
    assert user.is_active and not user.has_usable_password()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@alice.example"]
    assert len(INVITATION_LINK.findall(message.body)) == 1
    event = AuditEvent.objects.get(action="user.invited")
    assert event.object_id == str(user.pk) and event.actor_user == cast.alice_admin
    page = client.get("/team/").content.decode()
    assert "Invitation sent to new.person@alice.example" in page
    assert "new.person@alice.example" in team_emails(page)
    assert "invited" in page


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "role": "member"}, "email"),
        ({"email": "", "role": "member"}, "email"),
        ({"email": "x@alice.example", "role": "owner"}, "role"),
        ({"email": "x@alice.example"}, "role"),
        # Someone already in the team. (Another organization's address is answered like a
        # new one: tests/smartaccounts/test_invite_enumeration.py, S27.)
        ({"email": "member@alice.example", "role": "admin"}, "email"),
    ],
)
def test_an_invalid_invitation_is_400_beside_the_field_and_sends_nothing(
    cast, client, django_capture_on_commit_callbacks, body, field
):
    client.force_login(cast.alice_admin)
    users_before = set(User.objects.values_list("pk", "email", "organization_id", "role"))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/team/", body)

    assert response.status_code == 400
    page = response.content.decode()
    beside = re.search(
        rf'<(?:input|select)[^>]*id="id_{field}"[^>]*>.*?'
        rf'<ul class="errorlist" id="id_{field}_errors">',
        page,
        re.S,
    )
    assert beside is not None, page
    assert "<label" not in page[beside.start() : beside.end()]
    assert set(User.objects.values_list("pk", "email", "organization_id", "role")) == users_before
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action="user.invited").exists()


@pytest.mark.parametrize("who", ["alice_member", "alice_viewer", "carol_viewer"])
def test_members_and_viewers_may_not_invite(cast, who, django_capture_on_commit_callbacks):
    users_before = User.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(getattr(cast, who)).post(
            "/team/", {"email": "x@alice.example", "role": "admin"}
        )

    assert response.status_code == 403
    assert User.objects.count() == users_before
    assert mail.outbox == []


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_the_team_page_refuses_other_methods(cast, method):
    response = getattr(client_for(cast.alice_admin), method)("/team/")

    assert response.status_code == 405


def test_an_admin_changes_a_role(cast):
    client = client_for(cast.alice_admin)

    response = client.post(f"/team/{cast.alice_member.pk}/role/", {"role": "viewer"})

    assert response.status_code == 302
    assert response["Location"] == "/team/"
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.role == User.Role.VIEWER
    event = AuditEvent.objects.get(action="user.role_changed")
    assert event.data == {"email": "member@alice.example", "from": "member", "to": "viewer"}
    assert "message-success" in client.get("/team/").content.decode()


def test_the_role_change_message_names_the_new_role(cast):
    client = client_for(cast.alice_admin)

    client.post(f"/team/{cast.alice_member.pk}/role/", {"role": "viewer"})

    assert "member@alice.example is now viewer." in client.get("/team/").content.decode()


@pytest.mark.parametrize("role", ["owner", ""])
def test_an_invalid_role_changes_nothing(cast, role):
    client = client_for(cast.alice_admin)

    response = client.post(f"/team/{cast.alice_member.pk}/role/", {"role": role})

    assert response.status_code == 302
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.role == User.Role.MEMBER
    assert "Choose a valid role." in client.get("/team/").content.decode()
    assert not AuditEvent.objects.filter(action="user.role_changed").exists()


def test_the_last_admin_cannot_be_demoted_or_deactivated(cast):
    # Another admin who can no longer log in does not count.
    UserFactory(organization=cast.alice_reseller, email="gone@alice.example", is_active=False)
    client = client_for(cast.alice_admin)

    demoted = client.post(f"/team/{cast.alice_admin.pk}/role/", {"role": "member"})
    assert demoted.status_code == 302
    assert "at least one active admin" in client.get("/team/").content.decode()

    deactivated = client.post(f"/team/{cast.alice_admin.pk}/deactivate/")
    assert deactivated.status_code == 302
    assert "at least one active admin" in client.get("/team/").content.decode()

    cast.alice_admin.refresh_from_db()
    assert cast.alice_admin.role == User.Role.ADMIN and cast.alice_admin.is_active
    assert not AuditEvent.objects.filter(
        action__in=["user.role_changed", "user.deactivated"]
    ).exists()


def test_with_a_second_admin_the_first_may_step_down(cast):
    client = client_for(cast.alice_admin)

    client.post(f"/team/{cast.alice_member.pk}/role/", {"role": "admin"})
    response = client.post(f"/team/{cast.alice_admin.pk}/role/", {"role": "member"})

    assert response.status_code == 302
    cast.alice_admin.refresh_from_db()
    cast.alice_member.refresh_from_db()
    assert (cast.alice_admin.role, cast.alice_member.role) == ("member", "admin")
    # Now a member, the former admin may no longer manage people.
    assert client.post(f"/team/{cast.alice_viewer.pk}/deactivate/").status_code == 403


def test_an_admin_deactivates_a_user_who_then_cannot_log_in(cast):
    client = client_for(cast.alice_admin)

    response = client.post(f"/team/{cast.alice_member.pk}/deactivate/")

    assert response.status_code == 302
    assert response["Location"] == "/team/"
    cast.alice_member.refresh_from_db()
    assert not cast.alice_member.is_active
    assert AuditEvent.objects.get(action="user.deactivated").object_id == str(cast.alice_member.pk)
    assert not Client().login(username="member@alice.example", password=PASSWORD)
    page = client.get("/team/").content.decode()
    assert "member@alice.example can no longer log in" in page
    assert "deactivated" in page


@pytest.mark.parametrize("who", ["alice_member", "alice_viewer"])
def test_members_and_viewers_may_not_change_roles_or_deactivate(cast, who):
    client = client_for(getattr(cast, who))
    target = cast.alice_viewer if who == "alice_member" else cast.alice_member

    assert client.post(f"/team/{target.pk}/role/", {"role": "admin"}).status_code == 403
    assert client.post(f"/team/{target.pk}/deactivate/").status_code == 403
    target.refresh_from_db()
    assert target.is_active and target.role != User.Role.ADMIN
    assert not AuditEvent.objects.filter(
        action__in=["user.role_changed", "user.deactivated"]
    ).exists()


def test_another_organizations_user_is_404(cast):
    bob = client_for(cast.bob_admin)

    assert bob.post(f"/team/{cast.alice_member.pk}/role/", {"role": "viewer"}).status_code == 404
    assert bob.post(f"/team/{cast.alice_member.pk}/deactivate/").status_code == 404
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.role == User.Role.MEMBER and cast.alice_member.is_active
    # A reseller admin does not manage its customers' people either.
    alice = client_for(cast.alice_admin)
    assert alice.post(f"/team/{cast.carol_viewer.pk}/deactivate/").status_code == 404
    cast.carol_viewer.refresh_from_db()
    assert cast.carol_viewer.is_active


@pytest.mark.parametrize("user_id", ["not-a-uuid", str(uuid.UUID(int=1))])
def test_a_bad_user_id_is_404(cast, user_id):
    client = client_for(cast.alice_admin)

    assert client.post(f"/team/{user_id}/role/", {"role": "viewer"}).status_code == 404
    assert client.post(f"/team/{user_id}/deactivate/").status_code == 404


def test_role_and_deactivate_are_posts(cast):
    client = client_for(cast.alice_admin)

    assert client.get(f"/team/{cast.alice_member.pk}/role/").status_code == 405
    assert client.get(f"/team/{cast.alice_member.pk}/deactivate/").status_code == 405
    cast.alice_member.refresh_from_db()
    assert cast.alice_member.is_active and cast.alice_member.role == User.Role.MEMBER


def test_the_team_page_needs_a_bounded_number_of_queries(cast, django_assert_max_num_queries):
    client = client_for(cast.alice_member)
    client.get("/team/")
    with CaptureQueriesContext(connection) as few:
        client.get("/team/")
    for n in range(40):
        UserFactory(organization=cast.alice_reseller, email=f"p{n:02d}@alice.example")

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get("/team/")

    assert len(team_emails(response.content.decode())) == 25
    with CaptureQueriesContext(connection) as many:
        client.get("/team/")
    assert len(many) == len(few)


# --- Bounded queries on a large account ------------------------------------------------------


@pytest.fixture
def large_and_small(cast):
    """Carol's account, large in every dimension (LARGE: 50 applications, 250 licenses, 30
    servers); Erin, another customer of Alice, with a handful of each."""
    carol = cast.carol_customer.smart_account
    build_load(carol, tag="BIG", **LARGE)
    erin = CustomerFactory(name="Erin Ltd")
    PartnerLinkFactory(reseller=cast.alice_reseller, customer=erin)
    build_load(erin.smart_account, tag="SMALL", products=2, licenses_per_product=4, servers=3)
    assert License.objects.filter(account=carol).count() == 250
    return {"large": carol, "small": erin.smart_account}


def count_queries(client: Client, path: str) -> int:
    client.get(path)  # warm up anything cached per process
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(queries)


@pytest.mark.parametrize(
    ("path", "rows"),
    [
        ("/accounts/{id}/", 25),
        ("/accounts/{id}/?page=2", 25),
        ("/accounts/{id}/?expand={code}", 25),
        ("/accounts/{id}/licenses/{code}/", None),
    ],
)
def test_the_licenses_pages_need_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries, path, rows
):
    def url(size: str) -> str:
        account = large_and_small[size]
        code = License.objects.filter(account=account).order_by("product__code")[0].product.code
        return path.format(id=account.pk, code=code)

    client = client_for(cast.alice_member)
    client.get(url("large"))

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url("large"))

    assert response.status_code == 200
    page = response.content.decode()
    if rows:
        assert len(pool_rows(page)) == rows
    if "{code}" in path:
        assert len(license_rows(page)) == LARGE["licenses_per_product"]
    assert count_queries(client, url("large")) == count_queries(client, url("small"))


def test_the_licenses_api_needs_a_bounded_number_of_queries(
    cast, large_and_small, django_assert_max_num_queries
):
    client = APIClient()
    client.force_login(cast.alice_member)
    path = "/api/v1/accounts/{}/licenses?page_size=50"
    client.get(path.format(large_and_small["large"].pk))

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(path.format(large_and_small["large"].pk))

    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 50
    assert sum(len(row["licenses"]) for row in body["results"]) == 250
    large = count_queries(client, path.format(large_and_small["large"].pk))
    small = count_queries(client, path.format(large_and_small["small"].pk))
    assert large == small
