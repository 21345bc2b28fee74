"""Portal pages of a Smart Account and an organization: where each role lands, the licenses
page (one row per application, expandable to its licenses), the license-detail fragment and
the team page (invite, change role, deactivate, keep an admin) (STYLE 12, S9), and a bounded
number of queries on a large account."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from smartaccounts.actors import Actor
from smartaccounts.models import License, SmartAccount, User
from tokens import services

from ...factories import (
    CustomerFactory,
    LicenseFactory,
    PartnerLinkFactory,
    ServerFactory,
)
from ...load import LARGE, build_load

PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory
SITE = "https://licensing.example.test"
INVITATION_LINK = re.compile(re.escape(SITE) + r"(/invitation/[^/\s\"<>]+/[^/\s\"<>]+/)")
MAX_QUERIES = 20


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
