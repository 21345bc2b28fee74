"""Django's PostgreSQL backend, surviving a pooler that loses prepared statements.

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
from typing import Any

from django.db import OperationalError
from django.db.backends.postgresql import base as postgresql
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg import errors, pq

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
    def _execute(self, sql: str, params: Any, *ignored_wrapper_args: Any) -> Any:
        try:
            return super()._execute(sql, params, *ignored_wrapper_args)  # type: ignore[misc]
        except Exception as exc:
            if not refused_prepared_statement(exc):
                raise
            return self._execute_unprepared(sql, params, exc)

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
    def make_cursor(self, cursor: Any) -> CursorWrapper:
        return PreparedStatementRetry(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> CursorDebugWrapper:
        return PreparedStatementRetryDebug(cursor, self)
