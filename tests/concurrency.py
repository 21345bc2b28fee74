"""Races for the PostgreSQL tests: threads with their own database connections.

``run_together(count, work)`` starts ``count`` threads behind one barrier so they hit the
service at the same moment, and returns what each returned, in order. ``in_background(loop)``
runs ``loop(stop)`` in a thread for the length of a ``with`` block (faults injected while the
test drives the product). Each thread closes its own connection when it ends, so the test
database can be flushed or dropped; an exception raised in a thread is raised again in the
test, and a thread that does not finish fails the test rather than hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import connection

T = TypeVar("T")

JOIN_SECONDS = 60


def _closing_connection(
    body: Callable[[], None], errors: list[BaseException]
) -> Callable[[], None]:
    def target() -> None:
        try:
            body()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)
        finally:
            connection.close()

    return target


def _join(threads: list[threading.Thread], errors: list[BaseException]) -> None:
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    if errors:
        raise errors[0]


def run_together(count: int, work: Callable[[int], T]) -> list[T]:
    """Call ``work(0)`` … ``work(count - 1)`` in ``count`` threads released at one barrier;
    return their results by index. The first exception a thread raised is raised here."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def attempt(index: int) -> None:
        barrier.wait(timeout=JOIN_SECONDS)
        results[index] = work(index)

    threads = [
        threading.Thread(target=_closing_connection(lambda i=i: attempt(i), errors))
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    _join(threads, errors)
    return results  # type: ignore[return-value]  # every slot is filled when no thread failed


@contextmanager
def in_background(loop: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run ``loop(stop)`` in a thread while the block runs; ``stop`` is set when it ends."""
    stop = threading.Event()
    errors: list[BaseException] = []
    thread = threading.Thread(target=_closing_connection(lambda: loop(stop), errors), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        _join([thread], errors)
