"""Login and password-reset limits count the real client (S15, S26, S27): behind the trusted
proxy a lockout hits only the address that guessed, one address spraying many usernames is
paused, resets are throttled per address and per e-mail, and an unknown address is answered
and processed like a known one."""

import pytest
from django.test import override_settings

from notifications.models import OutboundEmail

PROXY = "10.0.0.2"  # the TLS proxy: every request arrives from it
PASSWORD = "pw-for-tests-123"  # tests/factories.py


def login(client, email, password, client_ip):
    return client.post(
        "/login/",
        {"username": email, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=client_ip,
    )


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3, TRUSTED_PROXY_COUNT=1)
def test_behind_the_proxy_a_lockout_hits_only_the_guessing_address(cast, client):
    for attempt in range(3):
        login(client, "alice@alice.example", f"guess-{attempt}", "203.0.113.66")
    assert login(client, "alice@alice.example", PASSWORD, "203.0.113.66").status_code == 429

    # Alice, from her own address through the same proxy, still gets in.
    response = login(client, "alice@alice.example", PASSWORD, "198.51.100.7")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(cast.alice_admin.pk)


@override_settings(
    AXES_ENABLED=True, AXES_FAILURE_LIMIT=5, LOGIN_SPRAY_LIMIT=10, TRUSTED_PROXY_COUNT=1
)
def test_one_address_trying_many_usernames_is_paused(cast, client):
    answers = [
        login(client, f"user{n}@spray.example", "Winter2026!", "203.0.113.9").status_code
        for n in range(20)
    ]

    assert answers[:10] == [200] * 10
    assert set(answers[10:]) == {429}
    # Even a right password from that address waits; another address is not affected.
    assert login(client, "alice@alice.example", PASSWORD, "203.0.113.9").status_code == 429
    assert login(client, "alice@alice.example", PASSWORD, "198.51.100.7").status_code == 302


@override_settings(LOGIN_SPRAY_LIMIT=10, TRUSTED_PROXY_COUNT=1)
def test_one_user_mistyping_is_not_spraying(cast, client):
    for _ in range(8):
        login(client, "alice@alice.example", "typo", "198.51.100.7")

    assert login(client, "alice@alice.example", PASSWORD, "198.51.100.7").status_code == 302


def reset(client, email, client_ip="198.51.100.7"):
    return client.post("/password-reset/", {"email": email}, REMOTE_ADDR=client_ip)


@override_settings(PASSWORD_RESET_LIMIT_PER_EMAIL=3, PASSWORD_RESET_LIMIT_PER_ADDRESS=100)
def test_resets_for_one_email_are_throttled_quietly(
    cast, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answers = [reset(client, "alice@alice.example", f"198.51.100.{n}") for n in range(6)]

    assert {a.status_code for a in answers} == {302}
    assert {a["Location"] for a in answers} == {"/password-reset/sent/"}
    assert OutboundEmail.objects.filter(to=["alice@alice.example"]).count() == 3


@override_settings(PASSWORD_RESET_LIMIT_PER_ADDRESS=5)
def test_resets_from_one_address_are_throttled(cast, client):
    answers = [reset(client, f"someone{n}@example.com").status_code for n in range(8)]

    assert answers == [302] * 5 + [429] * 3


@pytest.mark.parametrize("email", ["alice@alice.example", "nobody@nowhere.example"])
def test_a_reset_for_an_unknown_address_is_answered_and_processed_alike(
    cast, client, email, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = reset(client, email)

    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    # One outbox row either way: the same work, so the same time.
    assert OutboundEmail.objects.count() == 1
    row = OutboundEmail.objects.get()
    assert row.sent_at is not None
    from django.core import mail

    assert len(mail.outbox) == (1 if email.startswith("alice") else 0)
