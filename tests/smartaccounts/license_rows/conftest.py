"""The licenses page as its people use it: dates in the rows (not only in a tooltip), sorting
and filtering by care status kept across pages, the CSV export, the empty states and, for a
customer, who its partner is. Every variant reads a constant number of queries and stays in
the caller's tenant."""

import csv
import io
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
    LicenseFactory,
    ServerFactory,
)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def squash(html: str) -> str:
    return " ".join(strip_tags(html).split())


def applications(html: str) -> list[str]:
    """The application names of the licenses table, top to bottom."""
    rows = re.findall(r'<tbody class="pool-row">\s*<tr>(.*?)</tr>', html, re.S)
    return [squash(re.search(r"<strong>(.*?)</strong>", row, re.S).group(1)) for row in rows]


def cells(html: str, application: str) -> dict[str, str]:
    """{column label: text} of one application's row."""
    for row in re.findall(r'<tbody class="pool-row">\s*<tr>(.*?)</tr>', html, re.S):
        if f"<strong>{application}</strong>" in row:
            return {
                label: squash(text)
                for label, text in re.findall(
                    r'<td\b[^>]*data-label="([^"]+)"[^>]*>(.*?)</td>', row, re.S
                )
            }
    raise AssertionError(f"no row for {application}")


def day(moment) -> str:
    return moment.strftime("%Y-%m-%d")


@pytest.fixture
def account(cast) -> SmartAccount:
    return cast.carol_customer.smart_account


@pytest.fixture
def rows(cast, account) -> dict[str, License]:
    """Carol's applications: care active (Recording), expiring (Console), expired
    (Analytics), and only locked capacity (Billing); Dave's license must never show."""
    now = timezone.now()
    made = {
        "recording": LicenseFactory(
            account=account,
            product=cast.recording,
            quantity=10,
            care_ends_at=now + timedelta(days=300, hours=5),
            source="PO-100",
        ),
        "recording_sub": LicenseFactory(
            account=account,
            product=cast.recording,
            kind=License.Kind.SUBSCRIPTION,
            quantity=5,
            ends_at=now + timedelta(days=200),
            care_ends_at=now + timedelta(days=400),
            source="PO-101",
        ),
        "console": LicenseFactory(
            account=account,
            product=cast.console,
            quantity=40,
            care_ends_at=now + timedelta(days=20),
            source="PO-200",
        ),
        "analytics": LicenseFactory(
            account=account,
            product=cast.analytics,
            kind=License.Kind.SUBSCRIPTION,
            quantity=3,
            ends_at=now + timedelta(days=90),
            care_ends_at=now - timedelta(days=2),
            source="PO-300",
        ),
        "billing": LicenseFactory(
            account=account,
            product=cast.billing,
            quantity=7,
            state=License.State.LOCKED,
            source="PO-400",
        ),
        "dave": LicenseFactory(
            account=cast.dave_customer.smart_account,
            product=cast.recording,
            quantity=99,
            care_ends_at=now + timedelta(days=5),
            source="BOB-PO-1",
        ),
    }
    server = ServerFactory(account=account, name="PBX-Milan")
    services.assign_capacity(
        server=server, product=cast.recording, quantity=4, actor=Actor.system("tests")
    )
    return made


def count_queries(client: Client, path: str) -> int:
    client.get(path)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def read_csv(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))
