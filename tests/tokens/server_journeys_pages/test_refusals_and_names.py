"""Refusals beside the field with the true value, and unique server names."""

import re

import pytest
from django.db import IntegrityError, transaction

from tokens import services
from tokens.models import Assignment, Server

from ...factories import ServerFactory
from .conftest import SYSTEM, client_for, field_error, field_value, request_file, squash, upload

pytestmark = pytest.mark.django_db


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

    # The page offers no field for it (a request from an older page is still refused, above
    # the table, in words).
    assert response.status_code == 409
    page = response.content.decode()
    assert 'id="qty-ATTENDANT_CONSOLE"' not in page
    error = squash(page.split('id="capacity-errors"')[1].split("</ul>")[0])
    assert "it was activated offline, and a license file carries perpetual capacity only" in (error)
    assert "Subscription capacity needs a server activated online" in error
    assert "Subscription only: subscriptions need online activation." in squash(page)
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
        ServerFactory(account=account, name="pbx-lab")
