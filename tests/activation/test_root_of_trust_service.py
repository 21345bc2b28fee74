"""The service's half of the root of trust (S20, S22) and the agent against it: every
published signing key carries the root's endorsement, the root's private half can live apart
from the web servers, and the agent's clock is held to the service's (S23)."""

import io
import re
from datetime import timedelta
from unittest import mock

import jwt
import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from appsuite_agent.trust import endorsement_window, parse_root
from smartaccounts.actors import Actor
from smartaccounts.models import Product
from tokens import services
from tokens.models import Server, SigningKey
from tokens.signing import create_signing_key
from tokens.trust import ENDORSEMENT_TYPE

from .agent_flow.conftest import live, machine, online_token, signing_key  # noqa: F401


def published(client) -> list[dict]:
    return client.get("/api/v1/keys").json()["keys"]


def test_every_published_key_is_endorsed_by_the_root(db, client, vendor_root):
    create_signing_key()
    create_signing_key()
    root = parse_root(vendor_root, "test")

    keys = published(client)

    assert len(keys) == 2
    for key in keys:
        header = jwt.get_unverified_header(key["endorsement"])
        assert header["typ"] == ENDORSEMENT_TYPE and header["alg"] == "EdDSA"
        not_before, not_after = endorsement_window(key, root)
        assert (
            not_before <= timezone.now().timestamp() + settings.KEYS_MAX_AGE.total_seconds() + 120
        )
        assert not_after > not_before


def test_the_root_can_live_apart_from_the_web_servers(db, client, tmp_path, settings, vendor_root):
    # The web servers hold no root: a rotated key is published unendorsed...
    held_by_staff = settings.LICENSE_ROOT_KEY_FILE
    settings.LICENSE_ROOT_KEY_FILE = str(tmp_path / "absent.pem")
    key = create_signing_key()
    assert published(client)[0].get("endorsement") is None

    # ...until vendor staff endorse it where the root is kept.
    out = io.StringIO()
    call_command("endorse_signing_keys", "--root-key", held_by_staff, stdout=out)

    assert f"Endorsed signing key {key.kid}" in out.getvalue()
    endorsed = published(client)[0]
    assert endorsement_window(endorsed, parse_root(vendor_root, "test")) is not None


def test_root_key_commands(db, tmp_path, settings):
    path = tmp_path / "root.pem"
    out = io.StringIO()
    call_command("create_root_key", "--file", str(path), stdout=out, stderr=io.StringIO())
    public = out.getvalue().strip()
    assert public.startswith("ed25519:") and oct(path.stat().st_mode)[-3:] == "600"
    with pytest.raises(Exception, match="made once"):
        call_command("create_root_key", "--file", str(path), stderr=io.StringIO())
    call_command("create_root_key", "--file", str(path), "--if-missing")  # quietly nothing

    settings.LICENSE_ROOT_KEY_FILE = str(path)
    printed = io.StringIO()
    call_command("root_public_key", stdout=printed)
    assert printed.getvalue().strip() == public
    parse_root(public, "printed")  # the agent takes it as it is


def test_a_rotated_key_waits_for_caches_before_it_signs(db):
    first = create_signing_key()
    rotated = create_signing_key()

    first.refresh_from_db()
    assert first.signs_from <= timezone.now() < rotated.signs_from
    assert rotated.signs_from - rotated.created_at > settings.KEYS_MAX_AGE
    assert first.retired_at == rotated.signs_from
    assert set(SigningKey.objects.values_list("endorsement", flat=True)) != {""}


@live
def test_an_agent_whose_clock_is_three_hours_behind_is_told_and_takes_no_new_document(
    online_token,  # noqa: F811
    live_server,
    machine,  # noqa: F811
):
    agent = machine("pbx")
    assert agent("activate", online_token, "--url", live_server.url).code == 0
    held = agent.state["document"]

    # Only the agent's clock is set back: the service keeps the true time in its Date header.
    import appsuite_agent.cli as cli_module
    import appsuite_agent.verify as verify_module

    real = cli_module.time.time

    class Behind:
        @staticmethod
        def time() -> float:
            return real() - 3 * 3600

        def __getattr__(self, name):
            return getattr(cli_module.time, name)

    with (
        mock.patch.object(cli_module, "time", Behind()),
        mock.patch.object(verify_module, "time", Behind()),
    ):
        server = Server.objects.get(pk=agent.state["server_id"])
        services.assign_capacity(
            server=server,
            product=Product.objects.get(code="CALL_RECORDING"),
            quantity=9,
            actor=Actor.system("tests"),
        )
        run = agent("sync")
        status = agent("status")
        diagnose = agent("diagnose")

    assert run.code == 1 and "future" in run.err
    assert agent.state["document"] == held  # the new document was refused
    skew = re.search(r"clock is ([-+]\d+) s off", status.out)
    assert skew and abs(int(skew.group(1)) + 10800) < 60, status.out  # three hours behind
    assert "Clock skew:" in diagnose.out and "NOT OK" in diagnose.out


# --- A key signs only once endorsed (the production layout: root kept off the web tier) ---------


def document_kid(response) -> str:
    assert response.status_code in (200, 201), response.content
    return jwt.get_unverified_header(response.json()["license"])["kid"]


def activate(device, token: str, fingerprint: str = "fp-endorse"):
    return device.post(
        "/api/v1/activation",
        {"token": token, "fingerprint": fingerprint, "hostname": "pbx", "version": "W26"},
        format="json",
    )


def sync(device, credential: str):
    return device.post(
        "/api/v1/activation/sync",
        {"fingerprint": "fp-endorse", "usage": {}},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {credential}",
    )


@pytest.fixture
def web_tier(settings, tmp_path, vendor_root):
    """The web servers as the README lays out production: only the root's public half is
    configured, its private half is elsewhere. Returns the root file vendor staff hold."""
    held_by_staff = settings.LICENSE_ROOT_KEY_FILE
    settings.LICENSE_ROOT_KEY_FILE = str(tmp_path / "no-root-on-the-web-tier.pem")
    settings.LICENSE_ROOT_PUBLIC_KEY = vendor_root
    return held_by_staff


def test_a_rotated_key_signs_only_once_endorsed_where_the_root_is_kept(
    db, device, cast, perpetual, pending_server, token_for, web_tier
):
    from tokens.signing import _cache

    # The service's first key, endorsed by staff when the service was set up.
    first = create_signing_key()
    call_command("endorse_signing_keys", "--root-key", web_tier, stdout=io.StringIO())
    activation = activate(device, token_for(pending_server, cast.recording, 5))
    assert document_kid(activation) == first.kid
    credential = activation.json()["credential"]

    # Rotation on the web tier: the new key cannot be endorsed there, and says so.
    out = io.StringIO()
    call_command("rotate_signing_key", stdout=out)
    rotated = SigningKey.objects.get(endorsement="")
    said = out.getvalue()
    assert "is now signing" not in said
    assert f"New signing key {rotated.kid}" in said and "PENDING ENDORSEMENT" in said
    assert "manage.py endorse_signing_keys --root-key ROOT.pem" in said
    assert "where the root's private key is kept" in said and f"{first.kid} signs" in said

    # Long past the cache delay, unendorsed, it never signs: the endorsed key goes on.
    much_later = timezone.now() + settings.KEYS_MAX_AGE + timedelta(days=3)
    with time_machine.travel(much_later, tick=False):
        _cache.clear()
        assert document_kid(sync(device, credential)) == first.kid
        first.refresh_from_db()
        assert first.retired_at is None

        # Vendor staff endorse it on the machine where the root file is kept (its settings
        # name the file, no public key), against the service's database.
        endorsed = io.StringIO()
        with override_settings(LICENSE_ROOT_PUBLIC_KEY="", LICENSE_ROOT_KEY_FILE=web_tier):
            call_command("endorse_signing_keys", stdout=endorsed)
        assert f"Endorsed signing key {rotated.kid}" in endorsed.getvalue()
        _cache.clear()
        assert document_kid(sync(device, credential)) == rotated.kid
    first.refresh_from_db()
    assert first.retired_at is not None  # still published while its documents may be held
    assert first.kid in [key["kid"] for key in published(device)]


def test_an_endorsed_rotated_key_still_waits_for_caches(
    db, device, cast, perpetual, pending_server, token_for, web_tier
):
    from tokens.signing import _cache

    first = create_signing_key()
    call_command("endorse_signing_keys", "--root-key", web_tier, stdout=io.StringIO())
    credential = activate(device, token_for(pending_server, cast.recording, 5)).json()["credential"]
    call_command("rotate_signing_key", stdout=io.StringIO())
    call_command("endorse_signing_keys", "--root-key", web_tier, stdout=io.StringIO())
    rotated = SigningKey.objects.exclude(pk=first.pk).get()

    _cache.clear()
    assert document_kid(sync(device, credential)) == first.kid  # published, not yet cached
    with time_machine.travel(rotated.signs_from + timedelta(seconds=1), tick=False):
        _cache.clear()
        assert document_kid(sync(device, credential)) == rotated.kid


def test_an_endorsement_by_another_root_does_not_make_a_key_sign(
    db, device, cast, perpetual, pending_server, token_for, web_tier, tmp_path
):
    from tokens.signing import _cache
    from tokens.trust import endorse, load_root_private

    first = create_signing_key()
    call_command("endorse_signing_keys", "--root-key", web_tier, stdout=io.StringIO())
    call_command("rotate_signing_key", stdout=io.StringIO())
    rotated = SigningKey.objects.get(endorsement="")
    other = tmp_path / "other-root.pem"
    call_command(
        "create_root_key", "--file", str(other), stdout=io.StringIO(), stderr=io.StringIO()
    )
    # The command refuses a root the service does not trust...
    with pytest.raises(CommandError, match="not the root the service trusts"):
        call_command("endorse_signing_keys", "--root-key", str(other), stdout=io.StringIO())
    # ...and an endorsement written by it some other way is not taken either.
    forged_root = load_root_private(other)
    assert forged_root is not None
    rotated.endorsement = endorse(rotated, forged_root)
    rotated.save(update_fields=["endorsement"])

    credential = activate(device, token_for(pending_server, cast.recording, 5)).json()["credential"]
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        _cache.clear()
        assert document_kid(sync(device, credential)) == first.kid


def test_with_no_endorsed_key_activation_is_a_clean_503_and_the_token_stays_usable(
    db, device, cast, perpetual, pending_server, token_for, web_tier
):
    from tokens.models import ActivationToken

    out = io.StringIO()
    call_command("rotate_signing_key", stdout=out)  # a fresh service: its first key
    assert "PENDING ENDORSEMENT" in out.getvalue() and "no key signs" in out.getvalue()
    token = token_for(pending_server, cast.recording, 5)

    refused = activate(device, token)

    assert refused.status_code == 503, refused.content
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "service_unavailable"
    pending_server.refresh_from_db()
    assert pending_server.state == Server.State.PENDING and pending_server.fingerprint == ""
    assert not ActivationToken.objects.filter(used_at__isnull=False).exists()

    call_command("endorse_signing_keys", "--root-key", web_tier, stdout=io.StringIO())
    accepted = activate(device, token)  # the same token
    assert accepted.status_code == 201, accepted.content


def test_with_no_endorsed_key_sync_is_a_clean_503(
    db, device, cast, perpetual, pending_server, token_for, web_tier
):
    from tokens.signing import _cache

    first = create_signing_key()
    call_command("endorse_signing_keys", "--root-key", web_tier, stdout=io.StringIO())
    credential = activate(device, token_for(pending_server, cast.recording, 5)).json()["credential"]
    # The only endorsement no longer verifies (say, the web tier was given another root).
    SigningKey.objects.filter(pk=first.pk).update(endorsement="")
    _cache.clear()

    refused = sync(device, credential)

    assert refused.status_code == 503, refused.content
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "service_unavailable"


def signed_window(document: str, keys: list[dict]) -> tuple[int, dict]:
    """The document's iat and the endorsement window of the key that signed it."""
    kid = jwt.get_unverified_header(document)["kid"]
    endorsement = next(key for key in keys if key["kid"] == kid)["endorsement"]
    window = jwt.decode(endorsement, options={"verify_signature": False})
    return jwt.decode(document, options={"verify_signature": False})["iat"], window


def test_a_document_is_always_dated_inside_its_keys_endorsement(db, client):
    from tokens.signing import _cache, sign_document

    # A fresh service makes its first key while signing a document whose iat was taken a
    # moment earlier (when the request began).
    issued = int(timezone.now().timestamp()) - 1
    first_document = sign_document({"iat": issued})
    iat, window = signed_window(first_document, published(client))
    assert window["nbf"] <= iat <= window["exp"]

    # At a rotation, a document dated just before the new key's time is signed by the key
    # whose window covers that date, even once the new key signs and is cached.
    first = SigningKey.objects.get()
    rotated = create_signing_key()
    with time_machine.travel(rotated.signs_from + timedelta(seconds=2), tick=False):
        _cache.clear()
        now = int(timezone.now().timestamp())
        assert jwt.get_unverified_header(sign_document({"iat": now}))["kid"] == rotated.kid
        before = sign_document({"iat": int(rotated.signs_from.timestamp()) - 1})
        assert jwt.get_unverified_header(before)["kid"] == first.kid
        iat, window = signed_window(before, published(client))
        assert window["nbf"] <= iat <= window["exp"]


def test_rotation_where_the_root_is_at_hand_says_when_the_new_key_signs(db):
    first = create_signing_key()
    out = io.StringIO()

    call_command("rotate_signing_key", stdout=out)

    rotated = SigningKey.objects.exclude(pk=first.pk).get()
    said = out.getvalue()
    assert f"New signing key {rotated.kid} is published and endorsed" in said
    assert f"{rotated.signs_from:%Y-%m-%d %H:%M:%S} UTC" in said and f"{first.kid} signs" in said
    assert "PENDING" not in said
