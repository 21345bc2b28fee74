"""Activation tokens: shape, randomness, checksum, hashing at rest and expiry (S2, S3)."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from smartaccounts.models import AuditEvent
from smartaccounts.secrets import hash_secret
from tokens.models import ActivationToken, Server
from tokens.secrets import new_activation_token, normalize_token, token_checksum_ok

from ..conftest import api_client_for
from ..factories import ServerFactory

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
PREFIX = "act_"
BODY = 32  # 160 random bits in base32
CHECKSUM = 7


def token_url(server: Server) -> str:
    return f"/api/v1/servers/{server.pk}/token"


# --- tokens.secrets ------------------------------------------------------------------------


def test_tokens_are_prefixed_base32_with_at_least_128_random_bits():
    token = new_activation_token()

    assert token.startswith(PREFIX)
    rest = token[len(PREFIX) :]
    assert len(rest) == BODY + CHECKSUM
    assert set(rest) <= set(BASE32)
    random_part = base64.b32decode(rest[:BODY].upper())
    assert len(random_part) * 8 >= 128


def test_a_thousand_tokens_are_all_distinct():
    tokens = [new_activation_token() for _ in range(1000)]

    assert len(set(tokens)) == 1000
    # Distinct in their random part, not only in the checksum.
    assert len({t[len(PREFIX) : len(PREFIX) + BODY] for t in tokens}) == 1000
    # And no position is constant: every character of the body varies across tokens.
    for position in range(len(PREFIX), len(PREFIX) + BODY):
        assert len({t[position] for t in tokens}) > 1


def test_fresh_tokens_pass_the_checksum():
    assert all(token_checksum_ok(new_activation_token()) for _ in range(200))


def test_any_single_mistyped_character_fails_the_checksum():
    for _ in range(5):
        token = new_activation_token()
        for position in range(len(PREFIX), len(token)):
            for replacement in BASE32:
                if replacement == token[position]:
                    continue
                typo = token[:position] + replacement + token[position + 1 :]
                assert not token_checksum_ok(typo), (token, typo)


def test_swapped_neighbours_fail_the_checksum():
    token = new_activation_token()
    for position in range(len(PREFIX), len(token) - 1):
        a, b = token[position], token[position + 1]
        if a == b:
            continue
        swapped = token[:position] + b + a + token[position + 2 :]
        assert not token_checksum_ok(swapped)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: "tok_" + t[4:],
        lambda t: t[4:],
        lambda t: "clp_" + t[4:],
        lambda t: t[:-1],
        lambda t: t + "a",
        lambda t: t[:20],
        lambda t: "",
        lambda t: "act_",
        lambda t: t.upper(),  # not normalized yet
        lambda t: t[:10] + " " + t[10:],
    ],
)
def test_wrong_prefix_length_or_shape_fails_the_checksum(mangle):
    assert not token_checksum_ok(mangle(new_activation_token()))


def test_normalize_token_removes_whitespace_and_lowercases():
    token = new_activation_token()
    pasted = f"  {token[:12].upper()}\n{token[12:25]} \t{token[25:].upper()}\r\n"

    assert normalize_token(pasted) == token
    assert token_checksum_ok(normalize_token(pasted))
    assert normalize_token("ACT_AB CD\u00a0EF") == "act_abcdef"


# --- Stored only as a hash -----------------------------------------------------------------


@pytest.fixture
def server(cast) -> Server:
    return ServerFactory(account=cast.carol_customer.smart_account, name="PBX")


@pytest.fixture
def carol_api(cast):
    return api_client_for(cast.carol_customer)


def all_values(rows) -> list[str]:
    return [str(getattr(row, f.attname)) for row in rows for f in row._meta.concrete_fields]


@pytest.mark.django_db
def test_only_a_keyed_hash_of_the_token_is_stored(carol_api, server):
    raws = [carol_api.post(token_url(server)).json()["token"] for _ in range(3)]

    stored = ActivationToken.objects.all()
    assert stored.count() == 3
    assert {t.token_hash for t in stored} == {hash_secret(raw) for raw in raws}
    values = all_values(stored) + all_values(AuditEvent.objects.all())
    for raw in raws:
        body = raw[len(PREFIX) : len(PREFIX) + BODY]
        for value in values:
            assert raw not in value
            assert body not in value
            assert body.upper() not in value


# --- Expiry and status ---------------------------------------------------------------------

MINTED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_expires_at_is_created_at_plus_the_default_ttl_of_30_days(settings, carol_api, server):
    assert timedelta(days=30) == settings.ACTIVATION_TOKEN_TTL

    with time_machine.travel(MINTED_AT, tick=False):
        response = carol_api.post(token_url(server))

    token = ActivationToken.objects.get()
    assert token.created_at == MINTED_AT
    assert token.expires_at == MINTED_AT + timedelta(days=30)
    assert response.json()["expires_at"] == "2025-03-31T09:00:00Z"


@pytest.mark.django_db
def test_ttl_is_a_setting(settings, carol_api, server):
    settings.ACTIVATION_TOKEN_TTL = timedelta(hours=6)

    with time_machine.travel(MINTED_AT, tick=False):
        carol_api.post(token_url(server))

    token = ActivationToken.objects.get()
    assert token.expires_at == MINTED_AT + timedelta(hours=6)


@pytest.mark.django_db
def test_a_token_is_valid_until_its_ttl_then_expired(settings, carol_api, server):
    with time_machine.travel(MINTED_AT, tick=False):
        carol_api.post(token_url(server))
    token = ActivationToken.objects.get()
    ttl = settings.ACTIVATION_TOKEN_TTL

    assert token.status(MINTED_AT) == "valid"
    assert token.status(MINTED_AT + ttl - timedelta(seconds=1)) == "valid"
    assert token.is_usable(MINTED_AT + ttl - timedelta(seconds=1))
    assert token.status(MINTED_AT + ttl) == "expired"
    assert not token.is_usable(MINTED_AT + ttl)
    with time_machine.travel(MINTED_AT + ttl + timedelta(days=1), tick=False):
        assert token.status(timezone.now()) == "expired"


@pytest.mark.django_db
def test_regenerating_makes_the_old_token_revoked(carol_api, server):
    with time_machine.travel(MINTED_AT, tick=False):
        first = carol_api.post(token_url(server)).json()["token"]
    with time_machine.travel(MINTED_AT + timedelta(hours=1), tick=False):
        carol_api.post(token_url(server))

    old = ActivationToken.objects.get(token_hash=hash_secret(first))
    now = MINTED_AT + timedelta(hours=2)
    assert old.revoked_at == MINTED_AT + timedelta(hours=1)
    assert old.status(now) == "revoked"
    assert not old.is_usable(now)
    assert [t.status(now) for t in ActivationToken.objects.order_by("created_at")] == [
        "revoked",
        "valid",
    ]


@pytest.mark.django_db
def test_a_used_token_is_used_whatever_else_holds(carol_api, server):
    with time_machine.travel(MINTED_AT, tick=False):
        carol_api.post(token_url(server))
    token = ActivationToken.objects.get()
    ActivationToken.objects.filter(pk=token.pk).update(used_at=MINTED_AT + timedelta(hours=1))
    token.refresh_from_db()

    assert token.status(MINTED_AT + timedelta(hours=2)) == "used"
    assert token.status(MINTED_AT + timedelta(days=365)) == "used"  # not "expired"
    assert not token.is_usable(MINTED_AT + timedelta(hours=2))
