"""`manage.py check --deploy` on what the signing-key chain needs: a root key (tokens.E002), a
root that verifies the keys' endorsements (tokens.E003), and keys kept apart from
DJANGO_SECRET_KEY (tokens.W001-W003), run as the deployment runs it (tests/deploy.py). That the
root's public half alone passes is tests/security/test_hardening.py's production check."""

import io

import pytest
from django.core.checks import run_checks
from django.core.management import call_command

from tests.deploy import KEYS_APART, deploy_check
from tokens.signing import create_signing_key


def test_a_service_with_no_root_at_all_fails_the_deploy_checks(tmp_path):
    result = deploy_check(tmp_path, **KEYS_APART)  # no root file under VAR_DIR, no public key

    assert result.returncode != 0
    assert "tokens.E002" in result.stderr and "no root key" in result.stderr


def test_a_malformed_root_setting_fails_the_deploy_checks(tmp_path):
    result = deploy_check(tmp_path, LICENSE_ROOT_PUBLIC_KEY="ed25519:short", **KEYS_APART)

    assert result.returncode != 0 and "tokens.E002" in result.stderr


def test_keys_derived_from_the_secret_key_are_warned_about(tmp_path, vendor_root):
    result = deploy_check(tmp_path, LICENSE_ROOT_PUBLIC_KEY=vendor_root)

    assert result.returncode == 0  # warnings: the service runs, the operator is told
    for code, name in [
        ("tokens.W001", "SECRET_HASH_KEY"),
        ("tokens.W002", "OUTBOX_LINK_KEY"),
        ("tokens.W003", "LICENSE_KEY_PASSPHRASE"),
    ]:
        assert f"({code}) {name} is not set" in result.stderr, result.stderr

    strict = deploy_check(tmp_path, "--fail-level", "WARNING", LICENSE_ROOT_PUBLIC_KEY=vendor_root)
    assert strict.returncode != 0


def test_each_key_set_on_its_own_silences_its_warning(tmp_path, vendor_root):
    result = deploy_check(
        tmp_path,
        LICENSE_ROOT_PUBLIC_KEY=vendor_root,
        OUTBOX_LINK_KEY=KEYS_APART["OUTBOX_LINK_KEY"],
    )

    assert "tokens.W001" in result.stderr and "tokens.W003" in result.stderr
    assert "tokens.W002" not in result.stderr


def deploy_errors() -> set[str]:
    return {
        message.id
        for message in run_checks(include_deployment_checks=True)
        if message.id and message.id.startswith("tokens.E")
    }


@pytest.mark.django_db
def test_a_root_that_endorses_none_of_the_keys_in_use_is_an_error(settings, tmp_path):
    create_signing_key()  # endorsed by the test run's root
    assert deploy_errors() == set()

    other = tmp_path / "other-root.pem"
    printed = io.StringIO()
    call_command("create_root_key", "--file", str(other), stdout=printed, stderr=io.StringIO())
    settings.LICENSE_ROOT_PUBLIC_KEY = printed.getvalue().strip()

    assert deploy_errors() == {"tokens.E003"}
