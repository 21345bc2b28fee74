"""An ordinary sync is answered without DRF's request machinery (the fleet's hot path); any
other request goes through SyncApi. Both must answer alike: same statuses, tags, challenges
and problem documents."""

from typing import Any
from unittest import mock

import pytest

from activation_api.api import SyncApi
from smartaccounts.models import AuditEvent
from tokens import services
from tokens.models import Server

from ..orders.payloads import assert_problem

pytestmark = pytest.mark.django_db

SYNC = "/api/v1/activation/sync"
# Not one of the Accept values the plain path answers: DRF negotiates it (JSON all the same).
NEGOTIATED = "application/json; q=0.9, text/plain; q=0.1"


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
    """The same request, counted through SyncApi's DRF request wrapper."""
    with mock.patch.object(
        SyncApi, "initialize_request", autospec=True, side_effect=SyncApi.initialize_request
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


def test_an_ordinary_sync_never_builds_drfs_request_and_an_unusual_one_does(activated, device):
    ordinary = {"fingerprint": "fp-1", "version": "W26", "usage": {}}

    response, wrapped = through_drf(device, activated["credential"], ordinary)
    assert response.status_code == 200 and wrapped == 0

    response, wrapped = through_drf(device, activated["credential"], ordinary, NEGOTIATED)
    assert response.status_code == 200 and wrapped == 1


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
def test_both_paths_answer_alike(cast, activated, device, case):
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


def test_a_revoked_server_is_told_so_on_the_plain_path(cast, activated, device, system):
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
