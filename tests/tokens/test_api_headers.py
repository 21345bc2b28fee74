"""Answers that carry an activation token say `Cache-Control: no-store` themselves (S28)."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from smartaccounts.models import License
from tokens.models import Server

from ..conftest import api_client_for
from ..factories import LicenseFactory, ServerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol_api(cast) -> APIClient:
    return api_client_for(cast.carol_customer)


@pytest.fixture
def server(cast) -> Server:
    return ServerFactory(account=cast.carol_customer.smart_account, name="PBX Milan")


@pytest.fixture
def recording(cast) -> License:
    return LicenseFactory(
        account=cast.carol_customer.smart_account, product=cast.recording, quantity=10
    )


def assign(client: APIClient, server: Server, quantity: int) -> Any:
    return client.put(
        f"/api/v1/servers/{server.pk}/assignments/CALL_RECORDING",
        {"quantity": quantity},
        format="json",
    )


def test_an_assignment_that_mints_a_token_says_no_store(carol_api, server, recording):
    response = assign(carol_api, server, 4)

    assert response.status_code == 200 and response.json()["token"]
    assert response["Cache-Control"] == "no-store"

    # Without a token the answer is still private (the project's default).
    later = assign(carol_api, server, 5)
    assert later.status_code == 200 and "token" not in later.json()
    assert "no-store" in later["Cache-Control"] and "public" not in later["Cache-Control"]


def test_a_minted_token_says_no_store(carol_api, server, recording):
    assign(carol_api, server, 4)

    response = carol_api.post(f"/api/v1/servers/{server.pk}/token")

    assert response.status_code == 201 and response.json()["token"]
    assert response["Cache-Control"] == "no-store"


def test_the_schema_declares_no_store_and_the_challenge_on_the_token_operations(tmp_path: Path):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(path))
    paths = yaml.safe_load(path.read_text())["paths"]

    put = paths["/api/v1/servers/{server_id}/assignments/{product}"]["put"]["responses"]
    token = paths["/api/v1/servers/{server_id}/token"]["post"]["responses"]
    assert "Cache-Control" in put["200"]["headers"]
    assert "Cache-Control" in token["201"]["headers"]
    assert "WWW-Authenticate" in put["401"]["headers"]
    assert "WWW-Authenticate" in token["401"]["headers"]
