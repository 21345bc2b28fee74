"""Text that is no text: JSON may escape half of a UTF-16 pair ("\\ud800") on its own. Neither
the database nor a response can hold it, so a device request carrying one anywhere is a
400 validation_error naming the member, whatever the Accept (sync and activation), through
the real WSGI application, and nothing is written. A property test then
throws arbitrary text and JSON at both endpoints: a 4xx problem or a success, never a 5xx."""

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartaccounts.models import AuditEvent
from tokens.models import ActivationToken, Server

from ..wsgi_app import WsgiResponse, call

pytestmark = pytest.mark.django_db

ACTIVATE = "/api/v1/activation"
SYNC = "/api/v1/activation/sync"
# An Accept that needs negotiating: JSON all the same.
NEGOTIATED = "application/json; q=0.9, text/plain; q=0.1"
PROBLEM = "application/problem+json"


def post(path: str, body: Any, credential: str = "", accept: str = "") -> WsgiResponse:
    headers = {}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    if accept:
        headers["Accept"] = accept
    # ensure_ascii: a lone surrogate travels as the escape "\ud800", as a client would send it.
    raw = json.dumps(body, ensure_ascii=True).encode()
    return call(path, method="POST", body=raw, headers=headers)


def assert_refused(response: WsgiResponse, member: str) -> None:
    assert response.status == 400, response.body
    assert response.header("Content-Type") == PROBLEM
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert member in problem["errors"], problem


@pytest.fixture
def machine(cast, perpetual, pending_server, token_for) -> dict[str, Any]:
    token = token_for(pending_server, cast.recording, 5)
    activated = post(ACTIVATE, {"token": token, "fingerprint": "fp-1", "version": "W26"})
    assert activated.status == 201, activated.body
    return {"token": token, "server": pending_server, **activated.json()}


def server_row(server: Server) -> tuple:
    return tuple(
        Server.objects.filter(pk=server.pk).values_list(
            "state", "fingerprint", "reported_version", "reported_usage", "clone_suspected_at"
        )[0]
    )


@pytest.mark.parametrize("accept", ["", NEGOTIATED], ids=["plain", "negotiated"])
@pytest.mark.parametrize(
    ("body", "member"),
    [
        ({"fingerprint": "fp-1", "version": "\ud800", "usage": {}}, "version"),
        ({"fingerprint": "fp-1\udfff", "version": "W26", "usage": {}}, "fingerprint"),
        ({"fingerprint": "fp-1", "version": "W26", "usage": {"\udc00": 1}}, "usage.\\udc00"),
        ({"fingerprint": "fp-1", "version": "W26", "usage": {}, "\ud800": 1}, "\\ud800"),
    ],
    ids=["version", "fingerprint", "usage code", "member name"],
)
def test_a_lone_surrogate_in_a_sync_is_a_400_whatever_it_accepts(machine, body, member, accept):
    before, events = server_row(machine["server"]), AuditEvent.objects.count()

    assert_refused(post(SYNC, body, machine["credential"], accept), member)

    assert server_row(machine["server"]) == before
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("member", ["token", "fingerprint", "hostname", "version"])
def test_a_lone_surrogate_in_an_activation_is_a_400_and_the_token_stays_unused(
    cast, perpetual, pending_server, token_for, member
):
    token = token_for(pending_server, cast.recording, 5)
    body = {"token": token, "fingerprint": "fp-1", "hostname": "pbx", "version": "W26"}

    assert_refused(post(ACTIVATE, {**body, member: body[member] + "\ud800"}), member)

    assert ActivationToken.objects.get(server=pending_server).used_at is None
    assert Server.objects.get(pk=pending_server.pk).state == "pending"


# Text of any code point, surrogates halves included (Hypothesis leaves them out by default).
TEXT = st.lists(st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=12).map(
    "".join
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
# A member of the contract's bodies holds text (or anything else), sometimes the right text.
FIELDS = ("token", "fingerprint", "hostname", "version", "usage")
BODY = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            **{name: st.one_of(TEXT, JSON_VALUE, st.just("fp-1")) for name in FIELDS},
            "usage": st.one_of(
                st.dictionaries(TEXT, st.integers(-1, 10**10), max_size=3), JSON_VALUE
            ),
            "extra": JSON_VALUE,
        },
    ),
    st.dictionaries(TEXT, JSON_VALUE, max_size=4),
    JSON_VALUE,
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from([ACTIVATE, SYNC]),
    accept=st.sampled_from(["", NEGOTIATED]),
    body=BODY,
)
def test_any_json_body_is_answered_with_a_problem_or_a_success(machine, path, accept, body):
    response = post(path, body, machine["credential"] if path == SYNC else "", accept)

    assert response.status < 500, (response.status, response.body, body)
    if response.status >= 400:
        assert response.header("Content-Type") == PROBLEM
        assert response.json()["code"]
