"""Run the same database-touching function from several threads at once, for race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_at_once(fn: Callable[[], object], *, copies: int = 2, timeout: float = 60) -> list[BaseException]:
    """Start `copies` threads that call `fn` together (a barrier lines them up); return what they raised."""
    barrier = threading.Barrier(copies)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(5)
            fn()
        except BaseException as exc:  # handed back to the test, which asserts on it
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection; don't leak it past the test

    threads = [threading.Thread(target=run) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return errors
