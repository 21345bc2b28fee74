"""The service's half of the root of trust (S20, S22) and the agent against it: every
published signing key carries the root's endorsement, the root's private half can live apart
from the web servers, and the agent's clock is held to the service's (S23)."""

import io
import re
from unittest import mock

import jwt
import pytest
from django.conf import settings
from django.core.management import call_command
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
