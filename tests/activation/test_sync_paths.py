"""A sync has one way through: the plain view activation_api.api.sync, whatever the request
(no DRF request, negotiation or renderer), with SyncInput as its one validator. It answers
what DRF's view answered: the same statuses, tags, challenges, `Allow` and problem documents.
The requests go through the production WSGI callable (the `device` fixture)."""

import json
from typing import Any
from unittest import mock

import pytest
from rest_framework.views import APIView

from activation_api.api import SyncInput
from kernel.problems import flatten_errors
from smartaccounts.models import AuditEvent
from tokens import services
from tokens.models import Server

from ..orders.payloads import assert_problem

pytestmark = pytest.mark.django_db

SYNC = "/api/v1/activation/sync"
# An Accept a client may send that needs negotiating: JSON all the same.
NEGOTIATED = "application/json; q=0.9, text/plain; q=0.1"
PROBLEM_JSON = "application/problem+json"


def post(device, credential: str | None, body: dict[str, Any], accept: str = "", etag: str = ""):
    headers = {}
    if credential is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {credential}"
    if accept:
        headers["HTTP_ACCEPT"] = accept
    if etag:
        headers["HTTP_IF_NONE_MATCH"] = etag
    return device.post(SYNC, body, format="json", **headers)


def through_drf(device, *args: Any, **kwargs: Any):
    """The same request, counting the DRF requests built on the way."""
    with mock.patch.object(
        APIView, "initialize_request", autospec=True, side_effect=APIView.initialize_request
    ) as wrapped:
        response = post(device, *args, **kwargs)
    return response, wrapped.call_count


def answer(response) -> dict[str, Any]:
    """What a client can tell of an answer, the body parsed (the two render JSON alike in
    meaning, not necessarily byte for byte)."""
    return {
        "status": response.status_code,
        "content_type": response.get("Content-Type"),
        "etag": response.get("ETag"),
        "challenge": response.get("WWW-Authenticate"),
        "cache": response.get("Cache-Control"),
        "body": response.json() if response.content else None,
    }


def test_no_sync_builds_a_drf_request(activated, device):
    ordinary = {"fingerprint": "fp-1", "version": "W26", "usage": {}}

    for accept in ("", NEGOTIATED):
        response, wrapped = through_drf(device, activated["credential"], ordinary, accept)
        assert response.status_code == 200 and wrapped == 0
    response, wrapped = through_drf(
        device, activated["credential"], {"fingerprint": []}, NEGOTIATED
    )
    assert response.status_code == 400 and wrapped == 0


def test_every_answer_names_the_allowed_methods(activated, device):
    """As DRF's views did: `Allow` on every answer, the 405 included."""
    body = {"fingerprint": "fp-1", "version": "W26", "usage": {}}
    ok = post(device, activated["credential"], body)
    answers = [
        ok,
        post(device, activated["credential"], body, etag=ok["ETag"]),
        post(device, None, body),
        post(device, activated["credential"], {"fingerprint": ""}),
        device.get(SYNC),
        device.request("HEAD", SYNC),
        device.options(SYNC),
    ]

    assert [a.status_code for a in answers] == [200, 304, 401, 400, 405, 405, 200]
    assert {a["Allow"] for a in answers} == {"POST, OPTIONS"}
    assert_problem(answers[4], 405, "method_not_allowed")


def test_what_drf_negotiated_is_answered_alike(activated, device):
    body = {"fingerprint": "fp-1", "version": "W26", "usage": {}}
    credential = activated["credential"]

    assert_problem(post(device, credential, body, accept="text/html"), 406, "not_acceptable")
    assert post(device, credential, body, accept=PROBLEM_JSON).status_code == 200
    assert post(device, credential, body, accept="application/*").status_code == 200
    as_text = device.post(SYNC, b"{}", content_type="text/plain")
    assert_problem(as_text, 415, "unsupported_media_type")
    latin = device.post(
        SYNC,
        '{"fingerprint": "fp-1", "version": "W\u00e926"}'.encode("latin-1"),
        content_type="application/json; charset=latin-1",
        HTTP_AUTHORIZATION=f"Bearer {credential}",
    )
    assert latin.status_code == 200, latin.content
    assert Server.objects.get(pk=activated["server_id"]).reported_version == "W\u00e926"
    not_json = device.post(SYNC, b"{nope", HTTP_AUTHORIZATION=f"Bearer {credential}")
    assert_problem(not_json, 400, "validation_error")
    assert_problem(device.post(SYNC + "?format=xml", body), 404, "not_found")


def _cases(cast, activated) -> dict[str, tuple[str | None, dict[str, Any], int, str]]:
    credential = activated["credential"]
    body = {"fingerprint": "fp-1", "version": "W26", "usage": {}}
    return {
        "document": (credential, body, 200, ""),
        "not modified": (credential, body, 304, ""),
        "no credential": (None, body, 401, "not_authenticated"),
        "unknown credential": ("srv_" + "x" * 40, body, 401, "not_authenticated"),
        "another machine": (
            credential,
            {**body, "fingerprint": "fp-2"},
            409,
            "fingerprint_mismatch",
        ),
        "not in the catalog": (credential, {**body, "usage": {"NOPE": 1}}, 400, "validation_error"),
        "bad usage": (
            credential,
            {**body, "usage": {"CALL_RECORDING": -1}},
            400,
            "validation_error",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "document",
        "not modified",
        "no credential",
        "unknown credential",
        "another machine",
        "not in the catalog",
        "bad usage",
    ],
)
def test_any_accept_gets_the_same_answer(cast, activated, device, case):
    credential, body, status, code = _cases(cast, activated)[case]
    etag = ""
    if status == 304:
        etag = post(device, credential, body)["ETag"]

    plain = post(device, credential, body, etag=etag)
    negotiated = post(device, credential, body, NEGOTIATED, etag=etag)

    assert plain.status_code == status, plain.content
    mine, theirs = answer(plain), answer(negotiated)
    if status == 200:  # signed at different instants: the same tag, other bytes
        assert mine["body"].keys() == theirs["body"].keys() == {"license"}
        mine["body"] = theirs["body"] = None
    assert mine == theirs
    if code:
        assert_problem(plain, status, code)


def test_a_nul_character_anywhere_in_a_sync_is_refused_and_changes_nothing(cast, activated, device):
    server = Server.objects.get(pk=activated["server_id"])
    events = AuditEvent.objects.count()
    for body in (
        {"fingerprint": "fp-1\x00", "version": "W26", "usage": {}},
        {"fingerprint": "fp-1", "version": "W\x0026", "usage": {}},
        {"fingerprint": "fp-1", "version": "W26", "usage": {"CALL_RECORDING\x00": 1}},
    ):
        response = post(device, activated["credential"], body)
        assert_problem(response, 400, "validation_error")

    after = Server.objects.get(pk=server.pk)
    assert (after.reported_version, after.reported_usage, after.clone_suspected_at) == (
        server.reported_version,
        server.reported_usage,
        None,
    )
    assert AuditEvent.objects.count() == events


def test_a_revoked_server_is_told_so_whatever_it_accepts(cast, activated, device, system):
    server = Server.objects.get(pk=activated["server_id"])
    services.deactivate_server(server=server, actor=system)

    response = post(device, activated["credential"], {"fingerprint": "fp-1", "usage": {}})

    body = assert_problem(response, 401, "credential_revoked")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert (
        body
        == answer(
            post(device, activated["credential"], {"fingerprint": "fp-1", "usage": {}}, NEGOTIATED)
        )["body"]
    )


def test_documented_members_pass_and_unknown_ones_are_named(cast, activated, device):
    body = {"fingerprint": "fp-1", "version": "W26", "usage": {}}
    report = {"sequence": 1, "signature": "x"}

    assert (
        post(device, activated["credential"], {**body, "usage_report": report}).status_code == 200
    )
    refused = post(device, activated["credential"], {**body, "usage_repot": report})

    assert assert_problem(refused, 400, "validation_error")["errors"] == {
        "usage_repot": ["Unknown field."]
    }


@pytest.mark.parametrize(
    "body",
    [
        b"null",
        b"[]",
        b'"fp-1"',
        b'{"usage": {"CALL_RECORDING": -1}}',
        b'{"fingerprint": "fp-1", "usage": {"CALL_RECORDING": "many"}, "extra": 1}',
        b'{"fingerprint": null, "version": 7}',
    ],
    ids=["null", "list", "string", "no-fingerprint", "bad-usage-and-unknown", "wrong-types"],
)
def test_the_sync_refuses_a_body_as_its_serializer_does(activated, device, body):
    """The view validates with one SyncInput built once (no deep copy of its fields per
    request); its errors are those of a fresh SyncInput's is_valid, body for body."""
    fresh = SyncInput(data=json.loads(body))
    assert not fresh.is_valid()

    refused = device.post(
        SYNC,
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {activated['credential']}",
    )

    assert assert_problem(refused, 400, "validation_error")["errors"] == flatten_errors(
        fresh.errors
    )
    # Validating left nothing on the shared instance for the next request.
    assert post(device, activated["credential"], {"fingerprint": "fp-1"}).status_code == 200
