"""The back office's servers and activations: vendor staff search them by name, account,
fingerprint or host name; nothing there adds, changes or deletes (changes go through the
portal's services). Partners never get in."""

import re

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from smartaccounts.actors import Actor
from tokens import exchange, services
from tokens.models import ActivationToken, Server

from ..factories import LicenseFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")
SERVERS = reverse("admin:tokens_server_changelist")
TOKENS = reverse("admin:tokens_activationtoken_changelist")


@pytest.fixture
def servers(cast):
    carol = cast.carol_customer.smart_account
    dave = cast.dave_customer.smart_account
    LicenseFactory(account=carol, product=cast.recording, quantity=10)
    milan = services.create_server(account=carol, name="PBX-Milan", purpose="test", actor=SYSTEM)
    token = services.assign_capacity(
        server=milan, product=cast.recording, quantity=2, actor=SYSTEM
    ).token.raw
    exchange.activate_server(
        token=token, fingerprint="fp-milan-4242", hostname="pbx-milan.carol.example", version="W26"
    )
    rome = services.create_server(account=dave, name="PBX-Rome", purpose="test", actor=SYSTEM)
    return Server.objects.get(pk=milan.pk), rome


def names(client, url: str, query: str) -> set[str]:
    page = client.get(url, {"q": query}).content.decode()
    assert 'id="result_list"' in page or "0 results" in page or "0 servers" in page, page[:500]
    cells = re.findall(
        r'<t[hd] class="field-(?:name|server)(?: nowrap)?"[^>]*>(.*?)</t[hd]>', page, re.S
    )
    return {strip_tags(cell).strip() for cell in cells}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("milan", {"PBX-Milan"}),
        ("Dave Inc", {"PBX-Rome"}),
        ("fp-milan-42", {"PBX-Milan"}),
        ("carol.example", {"PBX-Milan"}),
        ("PBX", {"PBX-Milan", "PBX-Rome"}),
        ("nothing", set()),
    ],
)
def test_staff_search_servers_by_name_account_fingerprint_and_host(
    cast, client, servers, query, expected
):
    client.force_login(cast.vendor_staff)

    assert names(client, SERVERS, query) == expected


def test_staff_search_activations(cast, client, servers):
    client.force_login(cast.vendor_staff)

    assert names(client, TOKENS, "fp-milan") == {"PBX-Milan"}
    assert names(client, TOKENS, "Carol") == {"PBX-Milan"}
    page = client.get(TOKENS, {"status": "used"}).content.decode()
    assert "PBX-Milan" in page and "PBX-Rome" not in page


def test_a_server_page_shows_its_capacity_and_tokens_without_secrets(cast, client, servers):
    milan, _ = servers
    client.force_login(cast.vendor_staff)

    response = client.get(reverse("admin:tokens_server_change", args=[milan.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "capacity held" in page.lower() and "fp-milan-4242" in page
    token = ActivationToken.objects.get(server=milan)
    assert token.token_hash not in page
    assert 'name="_save"' not in page  # nothing to save


def test_nothing_is_added_changed_or_deleted_in_the_back_office(cast, client, servers):
    milan, _ = servers
    client.force_login(cast.vendor_staff)
    token = ActivationToken.objects.get(server=milan)

    assert client.get(reverse("admin:tokens_server_add")).status_code == 403
    assert client.get(reverse("admin:tokens_activationtoken_add")).status_code == 403
    changed = client.post(
        reverse("admin:tokens_server_change", args=[milan.pk]),
        {"name": "renamed", "state": "deactivated"},
    )
    assert changed.status_code == 403
    assert (
        client.post(
            reverse("admin:tokens_server_delete", args=[milan.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("admin:tokens_activationtoken_delete", args=[token.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    page = client.get(SERVERS).content.decode()
    assert 'name="action"' not in page  # no bulk delete either
    milan.refresh_from_db()
    assert milan.name == "PBX-Milan" and milan.state == "active"


def test_partners_do_not_get_in(cast, client, servers):
    client.force_login(cast.alice_admin)

    response = client.get(SERVERS)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
