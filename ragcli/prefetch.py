"""Read ahead: run a function on the next items in a background thread, in order.

Ingest uses it to parse and chunk the next files while the current batch is embedded: torch
releases the GIL while it multiplies, so a PDF-heavy corpus keeps the cores busy.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(
    items: Iterable[T], work: Callable[[T], R], depth: int = 8
) -> Generator[tuple[T, Future[R]], None, None]:
    """Yield ``(item, future of work(item))`` in order, with up to ``depth`` done ahead.

    ``future.result()`` returns the value or raises what ``work`` raised. Closing the
    iterator (or an exception in the consumer) stops the work after the current item; the
    thread is a daemon, so an interrupted process exits without waiting for that item.
    """
    # depth - 1 waiting in the queue, and one more done and waiting to be put there.
    done: queue.Queue[tuple[T, Future[R]] | None] = queue.Queue(maxsize=max(1, depth - 1))
    stop = threading.Event()

    def run() -> None:
        for item in items:
            if stop.is_set():
                return
            future: Future[R] = Future()
            try:
                future.set_result(work(item))
            except BaseException as e:  # handed to the consumer with its item
                future.set_exception(e)
            while not stop.is_set():
                try:
                    done.put((item, future), timeout=0.1)
                    break
                except queue.Full:
                    continue
        while not stop.is_set():
            try:
                done.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=run, name="ragcli-read-ahead", daemon=True)
    worker.start()
    try:
        while (entry := done.get()) is not None:
            yield entry
    finally:
        stop.set()
