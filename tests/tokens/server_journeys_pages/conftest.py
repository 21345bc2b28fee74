"""Issue 9 on the server pages: the offline exchange from the page (upload a request file,
download the license file; refusals as form errors), the last license file and whether it is
out of date, refusals rendered beside the field with the true value, unique server names,
over-use badges, and the servers list's search, filters, sorting, CSV export and empty state."""

import json
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django.utils.html import strip_tags

from smartaccounts.actors import Actor
from smartaccounts.models import License, SmartAccount
from tokens import services
from tokens.models import Server

from ...factories import LicenseFactory, ServerFactory

SYSTEM = Actor.system("tests")


def squash(html: str) -> str:
    return " ".join(strip_tags(html).split())


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def request_file(token: str, *, fingerprint: str = "fp-air-gapped", **fields) -> SimpleUploadedFile:
    """The JSON `appsuite-agent offline-request TOKEN --out request.json` writes."""
    body = {
        "token": token,
        "fingerprint": fingerprint,
        "hostname": "pbx-lab.local",
        "version": "Winter'26",
        "nonce": "n0nce-123",
        **fields,
    }
    return SimpleUploadedFile("request.json", json.dumps(body).encode(), "application/json")


def field_value(page: str, code: str) -> str:
    found = re.search(rf'<input id="qty-{code}"[^>]*\bvalue="(\d+)"', page)
    assert found, page
    return found.group(1)


def field_error(page: str, code: str) -> str:
    found = re.search(rf'<ul class="errorlist" id="err-{code}"[^>]*>(.*?)</ul>', page, re.S)
    assert found, page
    return squash(found.group(1))


@pytest.fixture
def account(cast) -> SmartAccount:
    return cast.carol_customer.smart_account


@pytest.fixture
def perpetual(cast, account) -> License:
    return LicenseFactory(account=account, product=cast.recording, quantity=10)


@pytest.fixture
def subscription(cast, account) -> License:
    end = timezone.now() + timedelta(days=200)
    return LicenseFactory(
        account=account,
        product=cast.console,
        kind=License.Kind.SUBSCRIPTION,
        quantity=5,
        ends_at=end,
        care_ends_at=end,
    )


@pytest.fixture
def lab(account, perpetual) -> tuple[Server, str]:
    """A pending server holding 4 perpetual channels, with the token the portal showed."""
    server = services.create_server(account=account, name="PBX-Lab", purpose="test", actor=SYSTEM)
    result = services.assign_capacity(
        server=server, product=perpetual.product, quantity=4, actor=SYSTEM
    )
    return server, result.token.raw


def upload(client: Client, server: Server, upload_file) -> object:
    return client.post(f"/servers/{server.pk}/offline-activation/", {"request_file": upload_file})


@pytest.fixture
def overused(cast, account, perpetual) -> Server:
    server = services.create_server(account=account, name="PBX-Busy", purpose="test", actor=SYSTEM)
    services.assign_capacity(server=server, product=cast.recording, quantity=6, actor=SYSTEM)
    Server.objects.filter(pk=server.pk).update(
        state=Server.State.ACTIVE,
        reported_usage={"CALL_RECORDING": 8},
        last_sync_at=timezone.now(),
    )
    return server


@pytest.fixture
def fleet(cast, account, perpetual) -> dict[str, Server]:
    now = timezone.now()
    made = {}
    for name, purpose, state, synced, host in [
        ("milan-prod", "production", "active", now - timedelta(minutes=5), "pbx-milan.local"),
        ("Rome-test", "test", "active", now - timedelta(days=2), "rome.local"),
        ("Turin", "production", "pending", None, ""),
        ("Naples", "redundancy", "stale", now - timedelta(days=40), "naples.local"),
        ("Old", "production", "deactivated", now - timedelta(days=400), ""),
    ]:
        made[name] = ServerFactory(
            account=account,
            name=name,
            purpose=purpose,
            state=state,
            last_sync_at=synced,
            hostname=host,
        )
    return made


def listed(client: Client, account: SmartAccount, query: str = "") -> list[str]:
    page = client.get(f"/accounts/{account.pk}/servers/{query}").content.decode()
    return [
        squash(name)
        for name in re.findall(r'<a href="/servers/[^"]+/"><strong>(.*?)</strong>', page)
    ]
