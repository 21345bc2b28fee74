"""The portal's API keys page and the `create_api_key` command (S2, S9, S17)."""

import re
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from smartaccounts.actors import Actor
from smartaccounts.models import ApiKey, AuditEvent
from smartaccounts.services import create_api_key

pytestmark = pytest.mark.django_db

PAGE = "/api-keys/"
RAW_KEY = re.compile(r"clp_[A-Za-z0-9_-]{40,}")


def revoke_url(key: ApiKey) -> str:
    return f"/api-keys/{key.pk}/revoke/"


def api_with(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def row_values(model_instance) -> list[str]:
    return [str(getattr(model_instance, f.attname)) for f in model_instance._meta.concrete_fields]


def assert_not_stored(raw: str) -> None:
    """No column of any API key or audit event holds the raw key (or most of it)."""
    secret_part = raw[len("clp_") + 8 :]  # beyond the visible prefix
    for row in [*ApiKey.objects.all(), *AuditEvent.objects.all()]:
        for value in row_values(row):
            assert raw not in value
            assert secret_part not in value


@pytest.fixture
def bobs_key(cast) -> ApiKey:
    key, _ = create_api_key(
        organization=cast.bob_reseller, name="Bob ERP", actor=Actor.system("tests")
    )
    return key


def create_in_portal(client, name: str = "ERP production") -> tuple[ApiKey, str, str]:
    response = client.post(PAGE, {"name": name})
    assert response.status_code == 200, response.content
    page = response.content.decode()
    found = set(RAW_KEY.findall(page))
    assert len(found) == 1, page
    raw = found.pop()
    return ApiKey.objects.get(name=name), raw, page


def test_an_admin_creates_a_key_shown_once_and_stored_only_as_a_hash(cast, client):
    client.force_login(cast.alice_admin)

    key, raw, page = create_in_portal(client)

    assert "copy it now" in page
    assert key.organization == cast.alice_reseller
    assert key.created_by == cast.alice_admin
    assert key.prefix == raw[:12] and key.prefix.startswith("clp_")
    assert key.key_hash and key.key_hash != raw
    assert len(raw) >= len("clp_") + 22  # >= 128 random bits, base64url
    assert_not_stored(raw)
    # Later visits show the prefix only.
    again = client.get(PAGE).content.decode()
    assert f"{key.prefix}…" in again
    assert raw not in again
    assert not RAW_KEY.search(again)


def test_the_new_key_authenticates_api_calls_until_revoked(cast, client):
    client.force_login(cast.alice_admin)
    key, raw, _ = create_in_portal(client)
    api = api_with(raw)
    assert api.get("/api/v1/orders").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None

    response = client.post(revoke_url(key))

    assert response.status_code == 302
    assert response["Location"] == PAGE
    key.refresh_from_db()
    assert key.revoked_at is not None
    denied = api_with(raw).get("/api/v1/orders")
    assert denied.status_code == 401
    assert denied.json()["code"] == "not_authenticated"
    assert "revoked" in client.get(PAGE).content.decode()


def test_revoking_twice_is_harmless(cast, client):
    client.force_login(cast.alice_admin)
    key, _, _ = create_in_portal(client)
    client.post(revoke_url(key))
    first_revoked_at = ApiKey.objects.get(pk=key.pk).revoked_at

    assert client.post(revoke_url(key)).status_code == 302
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first_revoked_at
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_an_empty_name_is_a_form_error_and_creates_nothing(cast, client):
    client.force_login(cast.alice_admin)

    response = client.post(PAGE, {"name": ""})

    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("who", ["alice_member", "alice_viewer"])
def test_members_and_viewers_may_look_but_not_create_or_revoke(cast, client, who):
    existing, raw = create_api_key(
        organization=cast.alice_reseller, name="Existing", actor=Actor.system("tests")
    )
    client.force_login(getattr(cast, who))

    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Existing" in page.content.decode()
    assert "Only an admin" in page.content.decode()

    assert client.post(PAGE, {"name": "Sneaky"}).status_code == 403
    assert client.post(revoke_url(existing)).status_code == 403

    assert list(ApiKey.objects.values_list("name", flat=True)) == ["Existing"]
    existing.refresh_from_db()
    assert existing.revoked_at is None
    assert api_with(raw).get("/api/v1/orders").status_code == 200


def test_another_organizations_key_is_404_on_revoke_and_hidden(cast, client, bobs_key):
    client.force_login(cast.alice_admin)

    assert "Bob ERP" not in client.get(PAGE).content.decode()
    assert client.post(revoke_url(bobs_key)).status_code == 404

    bobs_key.refresh_from_db()
    assert bobs_key.revoked_at is None
    assert not AuditEvent.objects.filter(action="api_key.revoked").exists()


def test_bad_ids_are_404_and_get_on_revoke_is_405(cast, client):
    client.force_login(cast.alice_admin)
    key, _, _ = create_in_portal(client)

    assert client.post("/api-keys/not-a-uuid/revoke/").status_code == 404
    assert client.post(f"/api-keys/{uuid.uuid4()}/revoke/").status_code == 404
    assert client.get(revoke_url(key)).status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None


def test_anonymous_is_sent_to_login_and_wrong_method_is_405(cast, client, bobs_key):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert client.post(revoke_url(bobs_key)).status_code == 302
    assert ApiKey.objects.get(pk=bobs_key.pk).revoked_at is None

    client.force_login(cast.alice_admin)
    assert client.put(PAGE).status_code == 405


def test_the_page_lists_keys_with_a_bounded_number_of_queries(
    cast, client, django_assert_max_num_queries
):
    for n in range(20):
        create_api_key(
            organization=cast.alice_reseller, name=f"Key {n}", actor=Actor.system("tests")
        )
    client.force_login(cast.alice_admin)

    with django_assert_max_num_queries(8):
        response = client.get(PAGE)

    assert response.status_code == 200
    assert response.content.decode().count("clp_") >= 20


def test_audit_events_are_written_and_hold_no_raw_key(cast, client):
    client.force_login(cast.alice_admin)
    key, raw, _ = create_in_portal(client)
    client.post(revoke_url(key))

    created = AuditEvent.objects.get(action="api_key.created")
    revoked = AuditEvent.objects.get(action="api_key.revoked")
    for event in (created, revoked):
        assert event.object_id == str(key.pk)
        assert event.actor_user == cast.alice_admin
        assert event.organization == cast.alice_reseller
        assert event.address == "127.0.0.1"
        assert event.data["prefix"] == key.prefix
    assert_not_stored(raw)


def test_the_command_prints_the_key_alone_on_its_last_line_and_it_works(cast):
    out = StringIO()

    call_command("create_api_key", "--org", "Alice Reseller", "--name", "ERP", stdout=out)

    raw = out.getvalue().rstrip("\n").splitlines()[-1]
    assert RAW_KEY.fullmatch(raw)
    key = ApiKey.objects.get()
    assert key.organization == cast.alice_reseller and key.name == "ERP"
    assert key.prefix == raw[:12]
    assert api_with(raw).get("/api/v1/orders").status_code == 200
    event = AuditEvent.objects.get(action="api_key.created")
    assert event.actor_user is None
    assert_not_stored(raw)


def test_the_command_refuses_an_unknown_organization(cast):
    with pytest.raises(CommandError, match="No organization"):
        call_command("create_api_key", "--org", "Nobody Ltd", stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_the_page_showing_a_new_key_is_never_stored_by_a_cache(cast, client):
    client.force_login(cast.alice_admin)

    response = client.post(PAGE, {"name": "ERP"})

    assert response.status_code == 200 and response.context["new_key"]
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "header",
    ["Bearer clp_not-a-real-key", "Bearer not-even-a-key", "Bearer srv_a-server-credential"],
)
def test_a_wrong_key_is_told_it_is_invalid_not_missing(db, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    denied = api.get("/api/v1/orders")

    assert denied.status_code == 401
    assert denied.json()["code"] == "not_authenticated"
    assert denied.json()["detail"] == "The API key is invalid or has been revoked."


def test_a_revoked_key_is_told_it_is_invalid_or_revoked(cast, client):
    client.force_login(cast.alice_admin)
    key, raw, _ = create_in_portal(client)
    client.post(revoke_url(key))

    denied = api_with(raw).get("/api/v1/orders")

    assert denied.json()["detail"] == "The API key is invalid or has been revoked."


def test_a_key_sent_with_another_scheme_is_told_how_to_send_it(db):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token clp_whatever")

    denied = api.get("/api/v1/orders")

    assert denied.status_code == 401
    assert denied.json()["code"] == "not_authenticated"
    assert "Bearer" in denied.json()["detail"]


def test_no_credentials_at_all_still_says_none_were_provided(db):
    denied = APIClient().get("/api/v1/orders")

    assert denied.status_code == 401
    assert "not provided" in denied.json()["detail"]
