"""S19: the API survives schema-driven fuzzing (Schemathesis against /api/v1/schema/).

Every operation of the published schema is fuzzed in process through the WSGI application,
with positive and negative data, a fixed seed and a bounded number of examples, authenticated
with a real partner API key. Path ids are mostly drawn from real objects (the caller's,
another tenant's, a deactivated server's, a well-formed id of nothing) and otherwise generated,
so the views are reached past their 404s; secrets and product codes in bodies are sometimes
real for the same reason. Each response must not be a 5xx; must carry a documented status code, the
documented content type and a body matching the documented schema; and every 4xx must be
problem+json with its `code`, `status`, `title` and `detail`.
"""

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kernel.errors import STATUS_FOR_CODE

from .conftest import World

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 50

# Every operation of the schema, with the organization whose API key calls it (None: the
# operation takes no API key). A new operation fails `test_every_operation_is_fuzzed` until it
# is listed here.
OPERATIONS: dict[str, str | None] = {
    "accounts_list": "alice_reseller",
    "accounts_licenses": "alice_reseller",
    "accounts_servers_list": "alice_reseller",
    "accounts_servers_create": "alice_reseller",
    "activation_create": None,
    "activation_sync": None,
    "keys_list": None,
    "healthz": None,
    "orders_list": "alice_reseller",
    "orders_create": "alice_reseller",
    "orders_retrieve": "alice_reseller",
    "orders_unlock": "alice_reseller",
    "resellers_list": "distributor",
    "servers_retrieve": "alice_reseller",
    "servers_deactivate": "alice_reseller",
    "servers_assignments_update": "alice_reseller",
    "servers_offline_activation": "alice_reseller",
    "servers_token_create": "alice_reseller",
}

# The list views answer with a page {count, next, previous, results}; the schema documents it.
LIST_OPERATIONS = [
    "accounts_list",
    "accounts_licenses",
    "accounts_servers_list",
    "orders_list",
    "resellers_list",
]


def operation_id(case: Any) -> str:
    return case.operation.definition.raw["operationId"]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """Django's WSGI application, as gunicorn runs it, inside the test's transaction.

    A real server closes the database connection around each request; inside a test that
    would close the connection holding the test's transaction (on PostgreSQL), so the
    handlers are detached the way Django's own test client detaches them.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def server_exceptions() -> Iterator[list[BaseException]]:
    """Exceptions the application turned into a 500, to show in the failure."""
    caught: list[BaseException] = []

    def record(sender: object, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None:
            caught.append(exc)

    got_request_exception.connect(record, weak=False)
    yield caught
    got_request_exception.disconnect(record)


@pytest.fixture
def api_schema(wsgi_app: WSGIHandler, db: None) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)


def path_values(world: World) -> dict[str, list[str]]:
    """Real values for each path parameter: the caller's (Alice serves Carol), another
    tenant's (Bob serves Dave), and a well-formed id of nothing."""
    carol, dave = world.carol, world.dave
    nothing = str(uuid.UUID(int=0x5EED))
    return {
        "account_id": [str(carol.account.pk), str(dave.account.pk), nothing],
        "order_id": [str(carol.order.pk), str(dave.order.pk), nothing],
        "server_id": [
            str(carol.pending.pk),
            str(carol.active.pk),
            str(carol.deactivated.pk),
            str(dave.pending.pk),
            nothing,
        ],
        "product": ["CALL_RECORDING", "ATTENDANT_CONSOLE", "CALL_BILLING", "NO_SUCH_PRODUCT"],
    }


OMIT = object()  # a body patch that removes the field


def body_patches(world: World) -> dict[str, dict[str, list[Any]]]:
    """Per operation, top-level body fields that are sometimes replaced with a real value."""
    tokens = [world.carol.pending_token, world.dave.pending_token]
    return {
        "activation_create": {"token": tokens},
        "servers_offline_activation": {"token": tokens[:1]},
        "servers_assignments_update": {"quantity": [0, 1, 2]},
        "activation_sync": {"fingerprint": [world.carol.active_fingerprint]},
        "orders_create": {
            "reseller": [OMIT],  # Alice's reseller orders for itself
            "customer": [
                {"name": "Carol Corp", "email": "it@carol.example", "external_id": "ALICE-CAROL"},
                {"name": "Dave Inc", "email": "it@dave.example"},
            ],
        },
    }


def real_order_lines(world: World) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Order lines with real product codes and sensible dates, to reach past validation."""
    later = (timezone.now() + timedelta(days=200)).isoformat()
    new_line = st.fixed_dictionaries(
        {
            "product": st.sampled_from(["CALL_RECORDING", "ATTENDANT_CONSOLE", "CALL_BILLING"]),
            "quantity": st.integers(min_value=1, max_value=1_000_000),
            "kind": st.sampled_from(["perpetual", "subscription"]),
        }
    ).map(lambda line: {**line, "ends_at": later} if line["kind"] == "subscription" else line)
    renewal = st.fixed_dictionaries(
        {
            "renews": st.sampled_from(
                [str(world.carol.subscription.pk), str(world.dave.subscription.pk)]
            ),
            "ends_at": st.just((timezone.now() + timedelta(days=400)).isoformat()),
        }
    )
    return st.lists(st.one_of(new_line, renewal), min_size=1, max_size=3)


def assert_problem_details(case: Any, response: Response) -> None:
    """Every 4xx of the API is RFC 9457 problem+json with the contract's `code`."""
    if not 400 <= response.status_code < 500:
        return
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), f"{where}: {content_type}"
    body = json.loads(response.content)
    for name in ("code", "status", "title", "detail"):
        assert body.get(name) not in (None, ""), f"{where}: no {name!r} in {body}"
    assert body["status"] == response.status_code, f"{where}: {body}"
    assert body["code"] in STATUS_FOR_CODE, f"{where}: unknown code {body['code']!r}"


def fuzz(
    operation: Any,
    headers: dict[str, str],
    *,
    paths: dict[str, list[str]],
    patches: dict[str, list[Any]],
    lines: st.SearchStrategy[list[dict[str, Any]]] | None,
    on_response: Callable[[Any, Response], None],
) -> None:
    # None lets Schemathesis generate the parameter (and, in negative mode, break it).
    choices = {p.name: st.sampled_from([*paths[p.name], None]) for p in operation.path_parameters}
    modes = [GenerationMode.POSITIVE]
    if operation.path_parameters or operation.query or operation.headers or operation.body:
        modes.append(GenerationMode.NEGATIVE)

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        mode = data.draw(st.sampled_from(modes), label="mode")
        fixed = {k: v for k, v in data.draw(st.fixed_dictionaries(choices)).items() if v}
        case = data.draw(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
        if isinstance(case.body, dict):
            for name, values in patches.items():
                value = data.draw(st.sampled_from([None, *values]), label=name)
                if value is OMIT:
                    case.body.pop(name, None)
                elif value is not None:
                    case.body[name] = value
            if lines is not None and data.draw(st.booleans(), label="real lines"):
                case.body["lines"] = data.draw(lines, label="lines")
        response = case.call(headers=headers)
        on_response(case, response)
        case.validate_response(response, checks=CHECKS, headers=headers)
        assert_problem_details(case, response)

    run()


def test_every_operation_is_fuzzed(api_schema):
    published = {
        result.ok().definition.raw["operationId"] for result in api_schema.get_all_operations()
    }
    assert published == set(OPERATIONS)


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_operation_survives_fuzzing(operation_id, api_schema, world, server_exceptions):
    operation = api_schema.find_operation_by_id(operation_id)
    caller = OPERATIONS[operation_id]
    headers = {"Authorization": f"Bearer {world.api_keys[caller]}"} if caller else {}
    if operation_id == "activation_sync":
        # An activated server's credential; the fuzzed fingerprint mostly mismatches it.
        headers = {"Authorization": f"Bearer {world.carol.credential}"}

    def no_server_exception(case: Any, response: Response) -> None:
        assert not server_exceptions, f"{case.method} {case.formatted_path}: {server_exceptions}"

    fuzz(
        operation,
        headers,
        paths=path_values(world),
        patches=body_patches(world).get(operation_id, {}),
        lines=real_order_lines(world) if operation_id == "orders_create" else None,
        on_response=no_server_exception,
    )


@pytest.mark.parametrize("operation_id", LIST_OPERATIONS)
def test_list_pages_match_their_documented_body(operation_id, api_schema, world):
    operation = api_schema.find_operation_by_id(operation_id)
    caller = OPERATIONS[operation_id]
    real = {name: values[0] for name, values in path_values(world).items()}
    case = operation.Case(path_parameters={p.name: real[p.name] for p in operation.path_parameters})
    headers = {"Authorization": f"Bearer {world.api_keys[caller]}"}
    response = case.call(headers=headers)

    assert response.status_code == 200
    case.validate_response(response, checks=[response_schema_conformance], headers=headers)


@pytest.mark.parametrize("operation_id", ["accounts_list", "orders_list", "resellers_list"])
def test_a_page_past_the_end_answers_a_documented_status(operation_id, api_schema, world):
    operation = api_schema.find_operation_by_id(operation_id)
    case = operation.Case(query={"page": 99})
    headers = {"Authorization": f"Bearer {world.api_keys[OPERATIONS[operation_id]]}"}
    response = case.call(headers=headers)

    case.validate_response(response, checks=[status_code_conformance], headers=headers)
