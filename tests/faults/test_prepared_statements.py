"""A server that refuses a prepared statement (what PgBouncer in transaction pooling without
max_prepared_statements does: the name is unknown on another server connection, or already
taken there by another client) never fails a request outside a transaction: the statement is
run again unprepared, the connection prepares nothing more, and one warning is logged. Made to
happen here on PostgreSQL itself, by dropping or taking the names psycopg uses."""

import logging

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from kernel.db.postgresql import base as backend

from .conftest import FAULT_TEST_MARKS

pytestmark = [*FAULT_TEST_MARKS, pytest.mark.django_db(transaction=True)]

SQL = "SELECT %s::int + 1"


@pytest.fixture
def fresh(monkeypatch):
    """A new connection that prepares every statement at its first use."""
    monkeypatch.setattr(backend, "_warned", False)
    connection.close()
    connection.ensure_connection()
    connection.connection.prepare_threshold = 0
    yield connection.connection
    connection.close()


def run(value: int) -> int:
    # As tokens.selectors runs the sync's read: a server-binding cursor in Django's wrapper.
    with connection.make_cursor(psycopg.Cursor(connection.connection)) as cursor:
        cursor.execute(SQL, [value])
        return cursor.fetchone()[0]


def prepared_names(raw: psycopg.Connection) -> list[str]:
    with raw.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements", prepare=False)
        return [row[0] for row in cursor.fetchall()]


def forget_prepared(raw: psycopg.Connection) -> None:
    """Drop each prepared statement by name, behind psycopg's back (it notices a DEALLOCATE
    ALL and forgets its own names), as if the next transaction ran on another server."""
    names = prepared_names(raw)
    assert names  # psycopg prepared something
    with raw.cursor() as cursor:
        for name in names:
            cursor.execute(f"DEALLOCATE {name}", prepare=False)


def test_a_statement_the_server_no_longer_holds_is_run_unprepared(fresh, caplog):
    assert run(1) == 2
    forget_prepared(fresh)

    with caplog.at_level(logging.WARNING, logger="licensing.db"):
        assert run(2) == 3
        assert run(3) == 4

    assert fresh.prepare_threshold is None and prepared_names(fresh) == []
    [warning] = [r for r in caplog.records if r.name == "licensing.db"]
    assert "InvalidSqlStatementName" in warning.getMessage()


def test_a_name_another_client_took_is_run_unprepared(fresh, caplog):
    with fresh.cursor() as cursor:  # the names psycopg will use, taken on "this server"
        for n in range(4):
            cursor.execute(f"PREPARE _pg3_{n} AS SELECT 0", prepare=False)

    with caplog.at_level(logging.WARNING, logger="licensing.db"):
        assert run(1) == 2
        assert run(2) == 3

    [warning] = [r for r in caplog.records if r.name == "licensing.db"]
    assert "DuplicatePreparedStatement" in warning.getMessage()


def test_the_warning_is_logged_once_per_process(fresh, caplog):
    with caplog.at_level(logging.WARNING, logger="licensing.db"):
        for _ in range(2):
            connection.close()
            connection.ensure_connection()
            connection.connection.prepare_threshold = 0
            assert run(1) == 2
            forget_prepared(connection.connection)
            assert run(2) == 3

    assert len([r for r in caplog.records if r.name == "licensing.db"]) == 1


def test_inside_a_transaction_the_refusal_is_a_503_not_a_500(fresh):
    assert run(1) == 2
    forget_prepared(fresh)

    # The refusal aborted the transaction: nothing can run in it again, and the caller is told
    # to retry (OperationalError: 503 with Retry-After), on a connection that no longer prepares.
    with pytest.raises(OperationalError), transaction.atomic():
        run(2)

    assert fresh.prepare_threshold is None
    assert run(3) == 4
