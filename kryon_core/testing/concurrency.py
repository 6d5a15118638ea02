"""Calls made from several threads at once, for the tests of what threads
share (a manager, an engine, the gates between engines): :func:`run_threads`
starts every target on a thread of its own, waits for them with a deadline
(a thread still running past it fails the test as a deadlock instead of
hanging it) and hands the test what the targets raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

__all__ = ["run_threads"]


def run_threads(targets: Iterable[Callable[[], object]], timeout: float = 120.0, *,
                errors_ok: bool = False) -> list[BaseException]:
    """Run each target on a daemon thread of its own, all started before any
    is waited for, and wait at most ``timeout`` seconds for them all. Fails
    with an AssertionError when a thread is still running then. Returns what the
    targets raised, in the order raised; unless ``errors_ok``, the first of
    them is raised instead (with its own traceback)."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], object]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        return body

    threads = [threading.Thread(target=guarded(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.0))
    stuck = sum(t.is_alive() for t in threads)
    assert not stuck, f"{stuck} of {len(threads)} threads still run after {timeout} s: a deadlock"
    if errors and not errors_ok:
        raise errors[0]
    return errors
