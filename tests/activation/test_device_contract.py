"""Whatever an AppSuite server (or anything else) sends to the device endpoints, the answer is
one the contract gives: a status documented for the path and method, an error as problem+json
with a documented code and its status, `Allow` on 405, an `ETag` on a sync's 200 and 304. The
requests go through the production WSGI callable (the lean handler and its middleware)."""

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..wsgi_app import WsgiResponse, call

pytestmark = pytest.mark.django_db

SYNC = "/api/v1/activation/sync"
ACTIVATE = "/api/v1/activation"
KEYS = "/api/v1/keys"
PROBLEM = "application/problem+json"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# docs/api-contract.md, "Error codes": the codes a problem document may carry.
DOCUMENTED_CODES = {
    "validation_error",
    "not_found",
    "permission_denied",
    "not_authenticated",
    "idempotency_conflict",
    "insufficient_capacity",
    "order_locked",
    "token_invalid",
    "token_expired",
    "token_used",
    "fingerprint_mismatch",
    "credential_revoked",
    "subscription_requires_online",
    "server_not_pending",
    "rate_limited",
    "partner_access_revoked",
    "server_replaced",
    "replacement_limit",
    "unlock_link_expired",
    "capacity_in_use",
    "approval_code_expired",
    "version_unsupported",
    "method_not_allowed",
    "not_acceptable",
    "unsupported_media_type",
    "payload_too_large",
    "server_error",
    "service_unavailable",
}
# The methods each path answers (its `Allow`), and what each may answer: the schema's
# responses, the HTTP-level refusals (406 for an Accept it cannot serve, 415 for a body that
# is not JSON, 413 over the size limit). 503 needs the database down, which nothing here does.
ALLOWED_METHODS = {
    SYNC: {"POST", "OPTIONS"},
    ACTIVATE: {"POST", "OPTIONS"},
    KEYS: {"GET", "HEAD", "OPTIONS"},
}
ANSWERS = {
    (SYNC, "POST"): {200, 304, 400, 401, 406, 409, 413, 415},
    (ACTIVATE, "POST"): {201, 400, 401, 406, 409, 410, 413, 415, 429},
    (KEYS, "GET"): {200, 406},
    (KEYS, "HEAD"): {200, 406},
}
OPTIONS_ANSWERS = {200, 406}  # the methods and media types, as DRF describes any view
REFUSED_METHOD = {405, 406}  # DRF negotiates the answer's media type before the method

CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/problem+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "not a media type",
]
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/*",
    PROBLEM,
    "application/json; q=0.9, text/plain; q=0.1",
    "text/html",
    "application/xml",
    "garbage",
]
TEXT = st.lists(st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=8).map(
    "".join
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
USAGE = st.one_of(
    st.dictionaries(
        st.sampled_from(["CALL_RECORDING", "CONSOLE", "NOPE", "", "X" * 70]),
        st.one_of(st.integers(-1, 10**10), st.just("3"), st.floats(allow_nan=False)),
        max_size=3,
    ),
    JSON_VALUE,
)
MEMBERS = {
    "token": st.one_of(st.just("act_unknown"), TEXT, JSON_VALUE),
    "fingerprint": st.one_of(st.just("fp-1"), st.just("fp-2"), st.just(" fp-1 "), TEXT, JSON_VALUE),
    "hostname": st.one_of(st.just("pbx-1"), TEXT, JSON_VALUE),
    "version": st.one_of(st.just("W26"), st.just("x" * 200), TEXT, JSON_VALUE),
    "usage": USAGE,
    "usage_report": st.one_of(st.just({"sequence": 1}), JSON_VALUE),
    "nonce": JSON_VALUE,
}
BODY = st.one_of(
    st.fixed_dictionaries({}, optional=MEMBERS).map(lambda b: json.dumps(b).encode()),
    st.just(json.dumps({"fingerprint": "fp-1", "version": "W26", "usage": {}}).encode()),
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
    st.just(b"[" * 100 + b"]" * 100),
)


def request(
    credential: str, path: str, method: str, body: bytes, content_type: str | None, **headers: Any
) -> WsgiResponse:
    auth = headers.pop("authorization")
    sent = {name: value for name, value in headers.items() if value is not None}
    if content_type is not None:
        sent["Content-Type"] = content_type
    if auth is not None:
        sent["Authorization"] = auth.replace("CREDENTIAL", credential)
    return call(path, method=method, body=body, headers=sent)


def allowed_answers(path: str, method: str) -> set[int]:
    if method == "OPTIONS":
        return OPTIONS_ANSWERS
    if method not in ALLOWED_METHODS[path]:
        return REFUSED_METHOD
    return ANSWERS[(path, method)]


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from([SYNC, SYNC, ACTIVATE, KEYS]),
    method=st.sampled_from(["POST", "POST", "POST", *METHODS]),
    body=BODY,
    content_type=st.sampled_from(CONTENT_TYPES),
    accept=st.sampled_from(ACCEPTS),
    authorization=st.sampled_from([None, "Bearer CREDENTIAL", "Bearer srv_unknown", "Basic eA=="]),
    if_none_match=st.sampled_from([None, "*", 'W/"nope"', "garbage"]),
)
def test_every_answer_is_one_the_contract_gives(
    activated, path, method, body, content_type, accept, authorization, if_none_match
):
    response = request(
        activated["credential"],
        path,
        method,
        body,
        content_type,
        accept=accept,
        authorization=authorization,
        if_none_match=if_none_match,
    )

    assert response.status in allowed_answers(path, method), (response.status, response.body)
    assert response.header("X-Request-ID")
    if response.status >= 400:
        assert response.header("Content-Type") == PROBLEM, response.body
        problem = response.json()
        assert problem["code"] in DOCUMENTED_CODES, problem
        assert problem["status"] == response.status
        assert problem["title"] and problem["detail"]
    if response.status == 405:
        assert set(response.header("Allow").split(", ")) == ALLOWED_METHODS[path]
    if path == SYNC and method == "POST" and response.status in (200, 304):
        assert response.header("ETag").startswith('W/"')
        assert (response.body == b"") == (response.status == 304)
    if response.status in (200, 201) and method == "POST":
        assert response.header("Content-Type") == "application/json"
        assert "license" in response.json()


def test_a_method_a_path_does_not_answer_is_a_405_naming_those_it_does(activated):
    for path, methods in ALLOWED_METHODS.items():
        for method in set(METHODS) - methods:
            response = call(path, method=method)
            assert response.status == 405, (path, method)
            assert set(response.header("Allow").split(", ")) == methods
            assert response.json()["code"] == "method_not_allowed"
