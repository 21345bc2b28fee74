"""Fault tests (S14): the database cannot be reached at all (stopped, a closed port, a host
that never answers). Portal pages answer a short 503 page with Retry-After, served without the
database; the API answers 503 problem+json; a silent database fails within the connect
timeout instead of holding the request."""

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from unittest.mock import patch

import pytest
from django.db import connection
from django.test import Client

import licensing_portal.wsgi  # noqa: F401  (configures logging at import: before caplog's handler)

from ..wsgi_app import call
from .conftest import FAULT_TEST_MARKS, free_port

pytestmark = [*FAULT_TEST_MARKS, pytest.mark.django_db(transaction=True)]


@contextmanager
def database_at(port: int, **options: object) -> Iterator[None]:
    """Point the test's connection at another port of this machine until the block ends."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=port)
    connection.settings_dict["OPTIONS"] = {**saved["OPTIONS"], **options}
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@contextmanager
def silent_listener(lifetime: float) -> Iterator[int]:
    """A port that accepts connections and never says a word (a host that hangs), closed
    after `lifetime` seconds at most so nothing waits on it forever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    timer = threading.Timer(lifetime, stop.set)
    timer.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        timer.cancel()
        thread.join(timeout=5)
        for sock in accepted:
            sock.close()
        server.close()


def session_cookie(user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


def assert_short_503_page(response) -> None:
    assert response.status == 503, response.body[:500]
    assert int(response.header("Retry-After")) > 0
    assert response.header("Content-Type").startswith("text/html")
    page = response.body.decode()
    assert "briefly unavailable" in page
    assert len(page) < 1000  # the short page, not the portal's layout


def test_a_logged_in_portal_page_answers_503_while_the_database_is_unreachable(cast, caplog):
    cookie = session_cookie(cast.alice_admin)
    assert call("/", headers=cookie).status in (200, 302)

    with (
        database_at(free_port()),  # nothing listens there: refused at once
        caplog.at_level(logging.INFO, logger="licensing.request"),
    ):
        response = call("/", headers=cookie)

    assert_short_503_page(response)
    line = [r for r in caplog.records if r.name == "licensing.request"][-1]
    assert line.status == 503 and line.outcome == "service_unavailable"
    # The database is back: the same session goes on.
    assert call("/", headers=cookie).status in (200, 302)


def test_the_api_answers_503_problem_json_while_the_database_is_unreachable(db):
    with database_at(free_port()):
        response = call("/api/v1/orders", headers={"Authorization": "Bearer clp_" + "x" * 40})

    assert response.status == 503, response.body
    assert response.header("Content-Type") == "application/problem+json"
    assert response.json()["code"] == "service_unavailable"
    assert int(response.header("Retry-After")) > 0


def test_a_database_that_never_answers_fails_within_the_connect_timeout(cast, settings):
    cookie = session_cookie(cast.alice_admin)
    timeout = settings.DATABASES["default"]["OPTIONS"]["connect_timeout"]
    assert timeout == 5  # DATABASE_CONNECT_TIMEOUT_SECONDS' default

    attempts: list[tuple[dict, BaseException | None]] = []
    connect = connection.get_new_connection

    def recorded(conn_params: dict):
        try:
            opened = connect(conn_params)
        except BaseException as exc:
            attempts.append((conn_params, exc))
            raise
        attempts.append((conn_params, None))
        return opened

    with (
        silent_listener(lifetime=30) as port,
        database_at(port, connect_timeout=2),
        patch.object(connection, "get_new_connection", recorded),
    ):
        response = call("/", headers=cookie)

    assert_short_503_page(response)
    # The driver gave up on its own connect timeout (not when the listener hung up at last),
    # and the request did not try again: one attempt, bounded by the setting.
    assert [params["connect_timeout"] for params, _ in attempts] == [2]
    error = attempts[0][1]
    assert error is not None and "timeout expired" in str(error), error
