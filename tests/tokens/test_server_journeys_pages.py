"""Issue 9 on the server pages: the offline exchange from the page (upload a request file,
download the license file; refusals as form errors), the last license file and whether it is
out of date, refusals rendered beside the field with the true value, unique server names,
over-use badges, and the servers list's search, filters, sorting, CSV export and empty state."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, SmartAccount
from tokens import services
from tokens.documents import issued_claims
from tokens.models import Assignment, Server

from ..factories import LicenseFactory

pytestmark = pytest.mark.django_db
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


# --- Offline activation from the page (issue item 2) -----------------------------------------


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

    # The token is in the uploaded file, not the caller's login: the form is invalid (400).
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


# --- The last license file of an offline server (issue item 12) ------------------------------


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


# --- Refusals beside the field, with the true value (issue item 3) ---------------------------


def test_a_stale_tab_sees_the_refusal_and_the_true_value(cast, account, perpetual):
    server = services.create_server(account=account, name="A", purpose="test", actor=SYSTEM)
    other = services.create_server(account=account, name="B", purpose="test", actor=SYSTEM)
    services.assign_capacity(server=server, product=cast.recording, quantity=2, actor=SYSTEM)
    # Another tab uses up the rest.
    services.assign_capacity(server=other, product=cast.recording, quantity=8, actor=SYSTEM)

    response = client_for(cast.alice_member).post(
        f"/servers/{server.pk}/assign/CALL_RECORDING/", {"quantity": 7}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 409
    page = response.content.decode()
    assert "<html" not in page  # the fragment htmx swaps in (static/portal/portal.js)
    assert "Only 0 more channels of Call Recording are available; this server holds 2." in (
        field_error(page, "CALL_RECORDING")
    )
    assert field_value(page, "CALL_RECORDING") == "2"


def test_subscription_capacity_on_an_offline_server_is_refused_in_words(cast, lab, subscription):
    server, token = lab
    client = client_for(cast.alice_member)
    upload(client, server, request_file(token))

    response = client.post(
        f"/servers/{server.pk}/assign/ATTENDANT_CONSOLE/", {"quantity": 2}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 409
    page = response.content.decode()
    error = field_error(page, "ATTENDANT_CONSOLE")
    assert "it was activated offline, and a license file carries perpetual capacity only" in (error)
    assert "Subscription capacity needs a server activated online" in error
    assert field_value(page, "ATTENDANT_CONSOLE") == "0"
    assert not Assignment.objects.filter(server=server, license=subscription).exists()


def test_every_htmx_form_of_the_server_page_targets_the_body_and_skips_browser_validation(
    cast, lab
):
    server, _ = lab
    page = client_for(cast.alice_member).get(f"/servers/{server.pk}/").content.decode()

    forms = re.findall(r"<form\b[^>]*\bhx-post=[^>]*>", page)
    assert forms
    for form in forms:
        assert 'hx-target="#server-body"' in form
    for form in re.findall(r'<form\b[^>]*class="assign-form"[^>]*>', page):
        assert "novalidate" in form


def test_the_portal_script_swaps_refusals(settings):
    script = (settings.PACKAGE_DIR / "static" / "portal" / "portal.js").read_text()

    assert "htmx:beforeSwap" in script
    assert re.search(r"new Set\(\[400, 409, 422\]\)", script)
    assert "shouldSwap = true" in script


# --- Unique server names ---------------------------------------------------------------------


def test_a_duplicate_name_is_refused_beside_the_field_on_create(cast, account, lab):
    before = Server.objects.count()

    response = client_for(cast.alice_member).post(
        f"/accounts/{account.pk}/servers/", {"name": "  pbx-LAB ", "purpose": "production"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    errors = re.search(r'<ul class="errorlist" id="id_name_errors">(.*?)</ul>', page, re.S)
    assert errors and "A server named “pbx-LAB” already exists" in squash(errors[1])
    assert Server.objects.count() == before


def test_a_duplicate_name_is_refused_beside_the_field_on_rename(cast, account, lab):
    other = services.create_server(account=account, name="PBX-Rome", purpose="test", actor=SYSTEM)

    response = client_for(cast.alice_member).post(
        f"/servers/{other.pk}/rename/", {"name": "PBX-LAB"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "A server named “PBX-LAB” already exists" in squash(
        re.search(r'id="rename-name-errors"[^>]*>(.*?)</ul>', page, re.S)[1]
    )
    assert Server.objects.get(pk=other.pk).name == "PBX-Rome"
    # Renaming a server to its own name in another case is fine.
    again = client_for(cast.alice_member).post(f"/servers/{other.pk}/rename/", {"name": "pbx-rome"})
    assert again.status_code == 302
    assert Server.objects.get(pk=other.pk).name == "pbx-rome"


def test_a_duplicate_name_is_a_validation_error_in_the_api(cast, account, lab, alice_api):
    response = alice_api.post(
        f"/api/v1/accounts/{account.pk}/servers", {"name": "PBX-Lab"}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "already exists" in body["detail"]


def test_names_are_free_in_another_account_and_after_deactivation(cast, account, lab):
    server, _ = lab
    dave = cast.dave_customer.smart_account
    services.create_server(account=dave, name="PBX-Lab", purpose="test", actor=SYSTEM)
    services.deactivate_server(server=server, actor=SYSTEM)

    again = services.create_server(account=account, name="PBX-Lab", purpose="test", actor=SYSTEM)

    assert again.name == "PBX-Lab"


def test_the_database_refuses_a_duplicate_name_written_around_the_service(account, lab):
    with pytest.raises(IntegrityError), transaction.atomic():
        Server.objects.create(account=account, name="pbx-lab")


# --- Over-use on the server page and the list (issue item 8) --------------------------------


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


def test_the_server_page_flags_use_above_what_it_holds(cast, overused):
    page = client_for(cast.carol_viewer).get(f"/servers/{overused.pk}/").content.decode()

    header = squash(re.search(r"<h1>(.*?)</h1>", page, re.S)[1])
    assert "over use: Call Recording 8 in use, holds 6" in header
    alert = squash(re.search(r'<article[^>]*id="over-use"[^>]*>(.*?)</article>', page, re.S)[1])
    assert "8 channels of Call Recording in use but holds 6" in alert
    assert "8: 2 over" in squash(page)


def test_the_servers_list_flags_the_row(cast, account, overused, lab):
    page = client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/").content.decode()

    rows = {
        squash(re.search(r"<strong>(.*?)</strong>", row, re.S)[1]): squash(row)
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        if "<strong>" in row
    }
    assert "over use: Call Recording 8 in use, holds 6" in rows["PBX-Busy"]
    assert "over use" not in rows["PBX-Lab"]


def test_within_what_it_holds_shows_no_badge(cast, overused):
    Server.objects.filter(pk=overused.pk).update(reported_usage={"CALL_RECORDING": 6})

    page = client_for(cast.alice_member).get(f"/servers/{overused.pk}/").content.decode()

    assert "over use" not in page and 'id="over-use"' not in page


# --- The servers list: search, filters, sorting, CSV, empty state ----------------------------


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
        made[name] = Server.objects.create(
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


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["milan-prod", "Naples", "Rome-test", "Turin"]),
        ("?sort=-name", ["Turin", "Rome-test", "Naples", "milan-prod"]),
        ("?sort=-last_sync", ["milan-prod", "Rome-test", "Naples", "Turin"]),
        ("?sort=last_sync", ["Turin", "Naples", "Rome-test", "milan-prod"]),
        ("?sort=state", ["milan-prod", "Rome-test", "Turin", "Naples"]),
        ("?sort=nonsense", ["milan-prod", "Naples", "Rome-test", "Turin"]),
        ("?q=ROME", ["Rome-test"]),
        ("?q=milan.local", ["milan-prod"]),
        ("?purpose=production", ["milan-prod", "Turin"]),
        ("?purpose=production&state=pending", ["Turin"]),
        ("?state=all&sort=-last_sync", ["milan-prod", "Rome-test", "Naples", "Old", "Turin"]),
        ("?state=deactivated", ["Old"]),
        ("?q=nothing-like-it", []),
    ],
)
def test_the_list_searches_filters_and_sorts(cast, account, fleet, query, names):
    assert listed(client_for(cast.alice_viewer), account, query) == names


def test_sort_headers_keep_the_filters_and_say_how_the_list_is_sorted(cast, account, fleet):
    page = (
        client_for(cast.alice_member)
        .get(f"/accounts/{account.pk}/servers/?purpose=production&sort=-last_sync&page=1")
        .content.decode()
    )

    header = re.search(r'<th scope="col" aria-sort="descending"><a href="([^"]+)"', page)
    assert header is not None
    assert "purpose=production" in header[1] and "sort=last_sync" in header[1]
    assert "page=" not in header[1]


def test_the_csv_export_has_flat_columns_and_inert_cells(cast, account, fleet, perpetual):
    evil = Server.objects.create(
        account=account,
        name='=HYPERLINK("http://evil.example","x")',
        state=Server.State.ACTIVE,
        hostname="+cmd|' /C calc'!A0",
        reported_version="@SUM(1)",
        reported_usage={"CALL_RECORDING": 5},
    )
    Assignment.objects.create(server=evil, license=perpetual, quantity=3)
    License.objects.filter(pk=perpetual.pk).update(assigned=3)

    response = client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/servers.csv?state=all")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["name"] for row in rows} == {*fleet, '\'=HYPERLINK("http://evil.example","x")'}
    bad = next(row for row in rows if row["id"] == str(evil.pk))
    assert bad["hostname"] == "'+cmd|' /C calc'!A0" and bad["version"] == "'@SUM(1)"
    assert (bad["product"], bad["held"], bad["in_use"], bad["over_use"]) == (
        "CALL_RECORDING",
        "3",
        "5",
        "2",
    )
    turin = next(row for row in rows if row["name"] == "Turin")
    assert turin["last_sync_utc"] == "" and turin["state"] == "pending"
    milan = next(row for row in rows if row["name"] == "milan-prod")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", milan["last_sync_utc"])


def test_the_csv_export_follows_the_filters_and_is_404_for_other_tenants(cast, account, fleet):
    client = client_for(cast.alice_member)

    response = client.get(f"/accounts/{account.pk}/servers.csv?purpose=production")
    names = [
        row["name"]
        for row in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    ]
    assert names == ["milan-prod", "Turin"]
    assert client_for(cast.bob_admin).get(f"/accounts/{account.pk}/servers.csv").status_code == 404
    assert client.post(f"/accounts/{account.pk}/servers.csv").status_code == 405


def test_an_account_without_servers_says_what_to_do_next(cast, account):
    manager = squash(
        client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/").content.decode()
    )
    viewer = squash(
        client_for(cast.carol_viewer).get(f"/accounts/{account.pk}/servers/").content.decode()
    )

    assert "No servers yet. Add one above" in manager
    assert "activate it on the AppSuite server with the token" in manager
    assert "The partner or the customer's administrator adds servers here." in viewer


def test_a_search_that_finds_nothing_offers_to_clear_it(cast, account, fleet):
    page = squash(
        client_for(cast.alice_member).get(f"/accounts/{account.pk}/servers/?q=zzz").content.decode()
    )
    assert "No server matches these filters." in page


def test_the_list_reads_offline_files_without_a_query_per_server(cast, account, perpetual):
    client = client_for(cast.alice_member)

    def offline_servers(count: int) -> int:
        for _ in range(count):
            server = services.create_server(
                account=account,
                name=f"vault-{Server.objects.count()}",
                purpose="test",
                actor=SYSTEM,
            )
            token = services.assign_capacity(
                server=server, product=cast.recording, quantity=1, actor=SYSTEM
            ).token.raw
            upload(client, server, request_file(token, fingerprint=f"fp-{server.pk}"))
        client.get(f"/accounts/{account.pk}/servers/")
        with CaptureQueriesContext(connection) as queries:
            page = client.get(f"/accounts/{account.pk}/servers/").content.decode()
        assert page.count("Activated offline") >= Server.objects.count()
        return len(queries)

    assert offline_servers(1) == offline_servers(4)
