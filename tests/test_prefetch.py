"""The read-ahead used by ingest: order, errors, bounded depth, and cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from ragcli.prefetch import read_ahead


def test_results_come_in_order_with_their_items() -> None:
    out = [(item, future.result()) for item, future in read_ahead(range(20), lambda n: n * n)]
    assert out == [(n, n * n) for n in range(20)]


def test_an_error_is_raised_for_its_own_item_only() -> None:
    def work(n: int) -> int:
        if n == 2:
            raise ValueError("bad file")
        return n

    results = []
    for _item, future in read_ahead(range(5), work):
        try:
            results.append(future.result())
        except ValueError as e:
            results.append(str(e))
    assert results == [0, 1, "bad file", 3, 4]


def test_work_runs_ahead_but_no_further_than_depth() -> None:
    started: list[int] = []
    gate = threading.Event()

    def work(n: int) -> int:
        started.append(n)
        gate.wait(5)
        return n

    reads = read_ahead(range(100), work, depth=3)
    item, future = next(reads)
    time.sleep(0.2)
    assert item == 0
    gate.set()
    assert future.result() == 0
    time.sleep(0.2)
    assert len(started) <= 4  # the three queued ahead, plus one queued when 0 was taken
    reads.close()


def test_closing_cancels_what_has_not_started() -> None:
    calls: list[int] = []

    def work(n: int) -> int:
        calls.append(n)
        time.sleep(0.05)
        return n

    reads = read_ahead(range(50), work, depth=8)
    next(reads)
    reads.close()
    time.sleep(0.3)
    assert len(calls) < 12
    with pytest.raises(StopIteration):
        next(reads)


def test_an_interrupted_process_does_not_wait_for_the_reader() -> None:
    gate = threading.Event()
    reads = read_ahead(range(3), lambda n: n if n == 0 else gate.wait(5))
    next(reads)
    worker = next(t for t in threading.enumerate() if t.name == "ragcli-read-ahead")
    assert worker.daemon
    reads.close()
    gate.set()
