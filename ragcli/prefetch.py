"""Read ahead: run a function on the next items in a background thread, in order.

Ingest uses it to parse and chunk the next files while the current batch is embedded: torch
releases the GIL while it multiplies, so a PDF-heavy corpus keeps the cores busy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(
    items: Iterable[T], work: Callable[[T], R], depth: int = 8
) -> Generator[tuple[T, Future[R]], None, None]:
    """Yield ``(item, future of work(item))`` in order, with up to ``depth`` started ahead.

    ``future.result()`` returns the value or raises what ``work`` raised. Closing the
    iterator (or an exception in the consumer) cancels what has not started; a call that is
    running finishes in the background.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragcli-read-ahead")
    queue: deque[tuple[T, Future[R]]] = deque()
    pending = iter(items)
    try:
        for item in pending:
            queue.append((item, pool.submit(work, item)))
            if len(queue) >= depth:
                break
        while queue:
            head = queue.popleft()
            for item in pending:
                queue.append((item, pool.submit(work, item)))
                break
            yield head
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
