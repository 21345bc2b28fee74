"""Django's PostgreSQL backend, surviving a pooler that loses prepared statements, with the
health check of a busy connection folded into its first statement (DatabaseWrapper).

psycopg prepares a statement on the server after `prepare_threshold` uses (settings:
DATABASE_PREPARE_THRESHOLD) and from then on executes it by name. Behind PgBouncer in
transaction pooling without max_prepared_statements (before 1.21, or with it set to 0), the
next transaction may run on another server connection, where that name does not exist (or,
prepared there by another client, already exists). Such a refusal is not the caller's fault:
the statement is run again unprepared, this connection prepares nothing more, and a warning is
logged once per process so the operator can fix the pooler (docs/operations.md: PgBouncer).

Only a statement run outside a transaction can be run again: inside one, the refusal aborted
the transaction, and the error is raised as an OperationalError (503 with Retry-After for the
caller, who retries on a connection that no longer prepares).
"""

import logging
import time
from typing import Any

from django.db import InterfaceError, OperationalError
from django.db.backends.postgresql import base as postgresql
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg import ServerCursor, errors, pq

logger = logging.getLogger("licensing.db")

# What a server answers when the name psycopg uses is not what it holds.
REFUSED_PREPARED_STATEMENT = (errors.InvalidSqlStatementName, errors.DuplicatePreparedStatement)
_warned = False


def refused_prepared_statement(exc: BaseException) -> bool:
    return isinstance(exc.__cause__ or exc, REFUSED_PREPARED_STATEMENT)


def _warn_once(exc: BaseException) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    logger.warning(
        "The database refused a prepared statement (%s): statements run unprepared on this "
        "connection from now on. Behind PgBouncer in transaction pooling, set "
        "max_prepared_statements (PgBouncer 1.21 or later) or DATABASE_PREPARE_THRESHOLD=none.",
        (exc.__cause__ or exc).__class__.__name__,
    )


class PreparedStatementRetry(CursorWrapper):
    db: "DatabaseWrapper"

    def execute(self, sql: Any, params: Any = None) -> Any:
        try:
            return super().execute(sql, params)
        except (OperationalError, InterfaceError):
            if not self.db.may_reconnect() or isinstance(self.cursor, ServerCursor):
                raise
            # The health check this statement stood in for failed: as Django would have,
            # take a new connection, then run the statement on it.
            self.cursor = self.db.reconnected_cursor()
            return super().execute(sql, params)

    def _execute(self, sql: str, params: Any, *ignored_wrapper_args: Any) -> Any:
        try:
            result = super()._execute(sql, params, *ignored_wrapper_args)  # type: ignore[misc]
        except Exception as exc:
            if not refused_prepared_statement(exc):
                self.db.answered_at = None
                raise
            result = self._execute_unprepared(sql, params, exc)
        self.db.answered_at = time.monotonic()
        self.db.unconfirmed = False
        return result

    def _execute_unprepared(self, sql: str, params: Any, refusal: Exception) -> Any:
        raw = self.db.connection
        raw.prepare_threshold = None  # psycopg neither prepares nor uses a prepared name
        _warn_once(refusal)
        if raw.info.transaction_status != pq.TransactionStatus.IDLE:
            raise OperationalError(
                "A prepared statement was refused inside a transaction; it cannot be retried."
            ) from refusal
        with self.db.wrap_database_errors:
            if params is None:
                return self.cursor.execute(sql, prepare=False)
            return self.cursor.execute(sql, params, prepare=False)


class PreparedStatementRetryDebug(PreparedStatementRetry, postgresql.CursorDebugWrapper):
    pass


class DatabaseWrapper(postgresql.DatabaseWrapper):
    """Also: the health check of a busy connection is its request's first statement. Django
    checks a reused connection at the start of each request (CONN_HEALTH_CHECKS) with a
    `SELECT 1`: on a busy worker, a second round trip for every sync. A connection that
    answered a statement within ANSWERED_RECENTLY seconds is taken as usable without it; if
    the first statement then finds the connection gone (the database restarted in between),
    outside a transaction, a new connection is taken and the statement run on it, as the check
    would have done. An idle connection, or one whose last statement failed, is checked."""

    ANSWERED_RECENTLY = 1.0
    answered_at: float | None = None
    # Taken as usable without a round trip, and no statement has confirmed it yet.
    unconfirmed = False

    def is_usable(self) -> bool:
        raw = self.connection
        if (
            raw is not None
            and self.answered_at is not None
            and not raw.broken
            and not raw.closed
            and time.monotonic() - self.answered_at < self.ANSWERED_RECENTLY
        ):
            self.unconfirmed = True
            return True
        return bool(super().is_usable())

    def may_reconnect(self) -> bool:
        raw = self.connection
        return (
            self.unconfirmed
            and not self.in_atomic_block
            and (raw is None or raw.broken or raw.closed)
        )

    def reconnected_cursor(self) -> Any:
        self.unconfirmed = False
        self.close()
        self.connect()
        return self.create_cursor()

    def connect(self) -> None:
        self.answered_at, self.unconfirmed = None, False
        super().connect()

    def close(self) -> None:
        self.answered_at, self.unconfirmed = None, False
        super().close()

    def make_cursor(self, cursor: Any) -> CursorWrapper:
        return PreparedStatementRetry(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> CursorDebugWrapper:
        return PreparedStatementRetryDebug(cursor, self)
