"""Set-based work in batches: the daily jobs change thousands of rows a few hundred at a time,
each batch in one transaction, instead of one transaction per row."""

from collections.abc import Callable
from typing import TypeVar

from django.db import models, transaction

M = TypeVar("M", bound=models.Model)


class Raced(Exception):
    """A batch's conditional UPDATE changed fewer rows than it selected: another writer got to
    some of them first (only possible where rows cannot be locked). Redo that batch row by row."""


def in_locked_batches(
    queryset: "models.QuerySet[M]", size: int, handle: Callable[[list[M]], int]
) -> int:
    """Call `handle` with `queryset`'s rows, `size` at a time in primary-key order, each batch
    inside its own transaction with its rows locked; returns the sum of what `handle` returned.

    Rows another transaction holds are skipped (that run is handling them), and each batch starts
    after the last key of the one before, so a row `handle` leaves as it was is not met again.
    Where the database cannot lock rows (SQLite, one writer at a time) the lock is a no-op.
    """
    done = 0
    after = None
    while True:
        with transaction.atomic():
            page = queryset if after is None else queryset.filter(pk__gt=after)
            batch = list(page.select_for_update(skip_locked=True).order_by("pk")[:size])
            if batch:
                done += handle(batch)
        if len(batch) < size:
            return done
        after = batch[-1].pk
