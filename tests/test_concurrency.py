"""The race helper the PostgreSQL tests share: all threads start together, results come back
by index, and a thread's exception fails the test."""

import threading
import time

import pytest

from .concurrency import in_background, run_together


def test_results_come_back_by_index_from_threads_released_together():
    # Every call waits inside its work for all five: only threads running at once get past
    # it (one after another, the first would wait alone and break the barrier).
    together = threading.Barrier(5, timeout=30)

    def work(index: int) -> int:
        together.wait()
        return index * 10

    assert run_together(5, work) == [0, 10, 20, 30, 40]
    assert not together.broken


def test_an_exception_in_a_thread_is_raised_in_the_test():
    def work(index: int) -> int:
        if index == 2:
            raise ValueError("boom")
        return index

    with pytest.raises(ValueError, match="boom"):
        run_together(4, work)


def test_the_background_loop_runs_during_the_block_and_stops_after_it():
    ticks: list[int] = []

    def loop(stop: threading.Event) -> None:
        while not stop.wait(0.01):
            ticks.append(1)

    with in_background(loop) as stop:
        time.sleep(0.1)
        assert not stop.is_set()

    assert stop.is_set()
    assert ticks
    count = len(ticks)
    time.sleep(0.05)
    assert len(ticks) == count


def test_an_exception_in_the_background_loop_fails_the_test():
    def loop(stop: threading.Event) -> None:
        raise RuntimeError("fault injector broke")

    with pytest.raises(RuntimeError, match="fault injector broke"), in_background(loop):
        time.sleep(0.05)
