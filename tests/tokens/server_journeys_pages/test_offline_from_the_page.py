"""Offline activation from the server page, and the last license file of an offline server."""

import csv
import io
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from smartaccounts.models import AuditEvent
from tokens import services
from tokens.documents import issued_claims
from tokens.models import Server

from .conftest import SYSTEM, client_for, request_file, squash, upload

pytestmark = pytest.mark.django_db


def test_uploading_the_request_file_downloads_the_license_file(cast, lab):
    server, token = lab

    response = upload(client_for(cast.alice_member), server, request_file(token))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="license-pbx-lab.json"'
    claims = issued_claims(json.loads(response.content)["license"])
    assert claims["mode"] == "offline" and claims["fingerprint"] == "fp-air-gapped"
    assert [(e["product"], e["quantity"]) for e in claims["entitlements"]] == [
        ("CALL_RECORDING", 4)
    ]
    server.refresh_from_db()
    assert server.state == Server.State.OFFLINE and server.hostname == "pbx-lab.local"
    assert AuditEvent.objects.filter(action="server.activated", object_id=str(server.pk)).exists()


def test_the_same_request_file_again_gives_the_same_license_file(cast, lab):
    server, token = lab
    client = client_for(cast.alice_member)
    first = upload(client, server, request_file(token)).content

    again = upload(client, server, request_file(token))

    assert again.status_code == 200 and again.content == first


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not json at all", "not a request file (it is not JSON)"),
        (b"[1, 2]", "This is not a request file."),
        (json.dumps({"token": "x", "fingerprint": "f"}).encode(), "lacks: nonce"),
        (b"\xff\xfe", "not a request file"),
        (
            json.dumps({"token": "x", "fingerprint": "f", "nonce": "n", "mode": "online"}).encode(),
            "it holds mode, which a request file does not",
        ),
        (
            json.dumps({"token": "x", "fingerprint": "f\ud800", "nonce": "n"}).encode(),
            "not a request file (it is not text)",
        ),
    ],
)
def test_a_malformed_file_is_a_form_error(cast, lab, content, words):
    server, _ = lab

    response = upload(
        client_for(cast.alice_member), server, SimpleUploadedFile("request.json", content)
    )

    assert response.status_code == 400
    assert words in squash(response.content.decode())
    assert 'id="id_request_file_errors"' in response.content.decode()
    assert Server.objects.get(pk=server.pk).state == Server.State.PENDING


def test_a_wrong_token_is_a_form_error(cast, account, lab):
    server, _ = lab
    other = services.create_server(account=account, name="Other", purpose="test", actor=SYSTEM)
    other_token = services.assign_capacity(
        server=other, product=cast.recording, quantity=1, actor=SYSTEM
    ).token.raw
    client = client_for(cast.alice_member)

    mistyped = upload(client, server, request_file("act_" + "a" * 39))
    foreign = upload(client, server, request_file(other_token))

    assert mistyped.status_code == 400
    assert "looks mistyped or truncated" in squash(mistyped.content.decode())
    assert foreign.status_code == 400
    assert "made for another server" in squash(foreign.content.decode())
    assert Server.objects.get(pk=server.pk).state == Server.State.PENDING


def test_subscription_capacity_is_refused_in_words(cast, lab, subscription):
    server, token = lab
    # Another tab assigns subscription capacity after this one showed the upload form.
    services.assign_capacity(server=server, product=cast.console, quantity=1, actor=SYSTEM)

    response = upload(client_for(cast.alice_member), server, request_file(token))

    assert response.status_code == 422
    page = squash(response.content.decode())
    assert "holds subscription capacity, which needs online activation" in page
    assert Server.objects.get(pk=server.pk).state == Server.State.PENDING


def test_read_only_roles_and_other_tenants_may_not_upload(cast, lab):
    server, token = lab

    assert upload(client_for(cast.alice_viewer), server, request_file(token)).status_code == 403
    assert upload(client_for(cast.bob_admin), server, request_file(token)).status_code == 404
    assert Server.objects.get(pk=server.pk).state == Server.State.PENDING


def test_the_page_shows_the_last_license_file_and_when_it_is_out_of_date(cast, lab):
    server, token = lab
    client = client_for(cast.alice_member)
    upload(client, server, request_file(token))

    page = client.get(f"/servers/{server.pk}/").content.decode()
    section = squash(re.search(r'<section id="license-file">(.*?)</section>', page, re.S)[1])
    assert re.search(r"Last issued \d{4}-\d\d-\d\d \d\d:\d\d UTC, holding:", section)
    assert "Call Recording: 4 channels" in section
    assert "out of date" not in section
    assert "Refresh the license file" in squash(page)

    # A capacity change makes the file on the server out of date, until the same request file
    # is exchanged again.
    services.assign_capacity(server=server, product=cast.recording, quantity=6, actor=SYSTEM)
    page = squash(client.get(f"/servers/{server.pk}/").content.decode())
    assert "The license file on the server is out of date." in page
    assert "upload the same request file again" in page
    assert "Call Recording: 4 channels" in page  # what the file on the server still says

    listing = client.get(f"/accounts/{server.account_id}/servers/").content.decode()
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", listing, re.S) if "PBX-Lab" in r)
    assert "license file out of date" in squash(row)
    exported = b"".join(
        client.get(f"/accounts/{server.account_id}/servers.csv").streaming_content
    ).decode()
    lab_row = next(r for r in csv.DictReader(io.StringIO(exported)) if r["name"] == "PBX-Lab")
    assert lab_row["license_file_out_of_date"] == "yes" and lab_row["license_file_issued_utc"]

    refreshed = upload(client, server, request_file(token))
    assert refreshed.status_code == 200
    claims = issued_claims(json.loads(refreshed.content)["license"])
    assert [e["quantity"] for e in claims["entitlements"]] == [6]
    page = squash(client.get(f"/servers/{server.pk}/").content.decode())
    assert "out of date" not in page and "Call Recording: 6 channels" in page
    listing = client.get(f"/accounts/{server.account_id}/servers/").content.decode()
    assert "license file out of date" not in listing


def test_viewers_see_the_license_file_without_the_upload_form(cast, lab):
    server, token = lab
    upload(client_for(cast.alice_member), server, request_file(token))

    page = client_for(cast.carol_viewer).get(f"/servers/{server.pk}/").content.decode()

    assert 'id="license-file"' in page and "offline-activation" not in page
