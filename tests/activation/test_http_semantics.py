"""The device endpoints by the RFCs: conditional sync (RFC 9110), bearer challenges (RFC 6750),
no-store for secrets, bounded usage reports, and a schema that says all of it (S24, S28)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml
from django.core.management import call_command
from django.utils import timezone

from smartaccounts.models import Product
from tokens import services
from tokens.models import Server

from ..orders.payloads import assert_problem
from .test_activation_api import activate, sync

pytestmark = pytest.mark.django_db

SYNC = "/api/v1/activation/sync"


def opaque(etag: str) -> str:
    return etag.removeprefix("W/")


# --- If-None-Match ------------------------------------------------------------------------


def test_the_sync_etag_is_weak_because_one_tag_covers_re_signed_bytes(activated, device):
    first = sync(device, activated["credential"])
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        second = sync(device, activated["credential"])

    # Same content, same period: one tag, but differently signed bytes. A strong tag would
    # promise byte equality (RFC 9110 8.8.1); this one is weak.
    assert first["ETag"] == second["ETag"]
    assert first.json()["license"] != second.json()["license"]
    assert first["ETag"].startswith('W/"') and first["ETag"].endswith('"')


def test_activation_hands_out_the_same_weak_tag_the_next_sync_answers_304_to(activated, device):
    etag = sync(device, activated["credential"])["ETag"]
    assert etag.startswith('W/"')
    assert sync(device, activated["credential"], etag=etag).status_code == 304


@pytest.mark.parametrize(
    "header",
    [
        '"nope", {tag}',  # a list, ours last
        '{tag}, "nope"',  # a list, ours first
        '  "a"  ,,  {tag}  ',  # spaces and empty list members (RFC 9110 5.6.1)
        'W/"other", {strong}',  # our opaque tag, strong (an older agent's): weak comparison
        "*",  # any current representation
    ],
)
def test_if_none_match_lists_weak_tags_and_star_give_304(activated, device, header):
    etag = sync(device, activated["credential"])["ETag"]
    value = header.format(tag=etag, strong=opaque(etag))

    response = sync(device, activated["credential"], etag=value)

    assert response.status_code == 304, response.content
    assert response["ETag"] == etag


def test_a_list_of_stale_tags_gets_the_changed_document_and_star_never_does(
    cast, activated, pending_server, device, system, subscription
):
    etag = sync(device, activated["credential"])["ETag"]
    bare = opaque(etag).strip('"')
    for other in ['"nope"', 'W/"nope", "other"', "garbage", bare, 'W/""', f"W/{bare}"]:
        assert sync(device, activated["credential"], etag=other).status_code == 200, other
    services.assign_capacity(server=pending_server, product=cast.console, quantity=2, actor=system)

    changed = sync(device, activated["credential"], etag=f'{etag}, W/"stale"')
    assert changed.status_code == 200 and changed["ETag"] != etag

    # `*` matches whatever the current document is (RFC 9110 13.1.2), changed or not: a
    # caller that wants to hear of changes sends the tag it holds.
    assert sync(device, activated["credential"], etag="*").status_code == 304


# --- WWW-Authenticate on device 401s ------------------------------------------------------


def test_sync_without_a_credential_gets_the_bare_bearer_challenge(device):
    response = device.post(SYNC, {"fingerprint": "fp-1", "usage": {}}, format="json")

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_sync_with_an_unknown_credential_is_an_invalid_token(device):
    response = device.post(
        SYNC,
        {"fingerprint": "fp-1", "usage": {}},
        format="json",
        HTTP_AUTHORIZATION="Bearer srv_not-a-real-one",
    )

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


def test_a_revoked_credential_gets_the_challenge_with_invalid_token(
    activated, pending_server, device, system
):
    services.deactivate_server(server=pending_server, actor=system)

    response = sync(device, activated["credential"])

    assert_problem(response, 401, "credential_revoked")
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


def test_an_unknown_activation_token_gets_the_bearer_challenge(device):
    response = activate(device, "act_unknown")

    assert_problem(response, 401, "token_invalid")
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


# --- Secrets are not stored by any cache ----------------------------------------------------


def test_activation_with_its_credential_says_no_store(cast, perpetual, pending_server, token_for):
    from rest_framework.test import APIClient

    response = activate(APIClient(), token_for(pending_server, cast.recording, 5))

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"


# --- Reported usage is bounded ------------------------------------------------------------


def row(server: Server) -> tuple:
    server.refresh_from_db()
    return (server.reported_usage, server.reported_version, server.last_sync_at)


@pytest.mark.parametrize(
    "usage",
    [
        {"CALL_RECORDING": 10**9},
        {"CALL_RECORDING": 2**63},
        {"CALL_RECORDING": 10**30},
        {"": 1},
        {"X" * 65: 1},
        {"NO_SUCH_PRODUCT": 1},
        {"CALL_RECORDING": 3, "NO_SUCH_PRODUCT": 0},
        {f"P{n}": 1 for n in range(1001)},
    ],
    ids=[
        "1e9",
        "2^63",
        "1e30",
        "empty-code",
        "long-code",
        "unknown-product",
        "unknown-beside-known",
        "more-than-any-catalog",
    ],
)
def test_out_of_range_usage_is_refused_and_nothing_is_written(
    activated, pending_server, device, usage
):
    sync(device, activated["credential"], usage={"CALL_RECORDING": 3})
    before = row(pending_server)

    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        response = sync(device, activated["credential"], usage=usage, version="Spring'27")

    body = assert_problem(response, 400, "validation_error")
    assert "usage" in body["errors"] or any(k.startswith("usage") for k in body["errors"])
    assert row(pending_server) == before


def test_every_catalog_product_up_to_the_bound_is_accepted_and_one_more_entry_is_not(
    activated, pending_server, device, django_assert_num_queries
):
    # A product the server holds none of is still reported (that is how over-use shows).
    usage = {product.code: 999_999_999 for product in Product.objects.all()}
    assert sync(device, activated["credential"], usage=usage).status_code == 200
    assert row(pending_server)[0] == usage

    # The same report again is the one-query hot path: the catalog is asked only on a change.
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=1)),
        django_assert_num_queries(1),
    ):
        assert sync(device, activated["credential"], usage=usage).status_code == 200

    more = {**usage, "ONE_MORE": 1}
    assert len(more) == Product.objects.count() + 1
    assert_problem(sync(device, activated["credential"], usage=more), 400, "validation_error")
    assert row(pending_server)[0] == usage


# --- The schema says it ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path: Path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    call_command("spectacular", "--file", str(path))
    return yaml.safe_load(path.read_text())


def operation(schema: dict[str, Any], path: str) -> dict[str, Any]:
    return schema["paths"][path]["post"]


def test_schema_declares_the_server_credential_bearer_scheme(schema):
    scheme = schema["components"]["securitySchemes"]["serverCredential"]

    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert operation(schema, "/api/v1/activation/sync")["security"] == [{"serverCredential": []}]


def test_schema_declares_the_response_headers(schema):
    sync_op = operation(schema, "/api/v1/activation/sync")["responses"]
    activation = operation(schema, "/api/v1/activation")["responses"]

    assert "ETag" in sync_op["200"]["headers"] and "ETag" in sync_op["304"]["headers"]
    assert "ETag" in activation["201"]["headers"]
    assert "Cache-Control" in activation["201"]["headers"]
    assert "Retry-After" in activation["429"]["headers"]
    assert "WWW-Authenticate" in sync_op["401"]["headers"]
    assert "WWW-Authenticate" in activation["401"]["headers"]


def test_schema_bounds_reported_usage(schema):
    usage = schema["components"]["schemas"]["SyncInputRequest"]["properties"]["usage"]

    assert usage["additionalProperties"]["minimum"] == 0
    assert usage["additionalProperties"]["maximum"] == 10**9 - 1
    assert usage["maxProperties"] == 1000
