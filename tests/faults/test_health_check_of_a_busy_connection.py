"""Django checks a reused connection at the start of every request (CONN_HEALTH_CHECKS) with a
round trip of its own. On a connection that answered a statement moments ago the request's
first statement stands in for it (kernel/db/postgresql); a connection idle longer, or one whose
last statement failed, is still checked. That the first statement reconnects when the database
dropped the connection in between: test_database_faults.py."""

import pytest
from django.db import ProgrammingError, close_old_connections, connection
from django.db.backends.postgresql import base as django_postgresql
from rest_framework.test import APIClient

from kernel.db.postgresql import base as backend

from .conftest import FAULT_TEST_MARKS, sync

pytestmark = [*FAULT_TEST_MARKS, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def round_trips(monkeypatch) -> list[int]:
    """One entry per health check that went to the database."""
    made: list[int] = []
    real = django_postgresql.DatabaseWrapper.is_usable

    def counted(self):
        made.append(1)
        return real(self)

    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", counted)
    return made


def test_a_busy_connection_is_not_checked_with_a_round_trip_of_its_own(online_server, round_trips):
    _, credential = online_server
    device = APIClient()

    statuses = [sync(device, credential).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert round_trips == []


def test_an_idle_connection_is_checked(online_server, round_trips, monkeypatch):
    _, credential = online_server
    monkeypatch.setattr(backend.DatabaseWrapper, "ANSWERED_RECENTLY", 0.0)

    assert sync(APIClient(), credential).status_code == 200

    assert round_trips  # Django's SELECT 1 went out before the request's first statement


def test_a_connection_whose_last_statement_failed_is_checked(online_server, round_trips):
    _, credential = online_server
    assert sync(APIClient(), credential).status_code == 200
    with pytest.raises(ProgrammingError), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    round_trips.clear()

    close_old_connections()  # what the WSGI handler does when a request ends

    assert round_trips  # errors_occurred: Django checks it, and nothing is taken on trust
