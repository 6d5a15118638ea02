"""The deadline watchdog: makes QuickJS ask the interrupt handler soon.

QuickJS asks the interrupt handler only once every 10,000 polls (loop
back-edges and calls): that is about 0.1 ms for a plain loop, but a loop whose
body calls a builtin that takes 20 ms between two polls (a search through a
long string, a pass over a large typed array) would ask once in 200 s. The
watchdog is one daemon thread per process that, every ``TICK`` seconds, sets
the interrupt counter of every context that runs under a time limit to 1, so
its next poll asks the handler, which compares the running thread's deadline
(``Host.interrupt``). A context that is not running asks once at its next
call, which costs one handler call.

It costs the calls nothing: no bookkeeping per call, only a few hundred ns
of the watchdog's own per tick and context. Builtins that run long between
two polls by themselves are bounded by the guards (``guards.js``) instead.

QuickJS's parser and regex compiler never poll: for a thread still running
a tick past its deadline, the watchdog also lowers the malloc limit of the
runtimes it is inside (``cutoff.py``).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from . import cutoff

#: seconds between two pokes; with a time limit of T a runaway loop stops within T + TICK + one poll
TICK = 0.02


class Watchdog:
    """Pokes the interrupt counter of every registered context every TICK."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # starting and stopping the thread
        self._counters: dict[int, tuple[Any, Any, Any]] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, key: int, ctx: Any, counter: Any, state: Any) -> None:
        """Watch ``ctx`` through its counter (``capi.interrupt_counter``); the
        watchdog holds ``ctx`` until :meth:`remove`, so it is never freed under a
        poke, and ``state`` (its ScriptState) weakly, to cut a late parse short."""
        with self._lock:
            self._counters[key] = (ctx, counter, weakref.ref(state))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="kryon-js-watchdog", daemon=True)
                self._thread.start()

    def remove(self, key: int) -> None:
        """Stop watching (before the context is freed). Takes no lock: it may run
        from a finalizer during a collection on any thread, the watchdog's too."""
        self._counters.pop(key, None)

    def _loop(self) -> None:
        while True:
            self._wake.wait(TICK)
            # a copy (one C-level step, so a finalizer's remove() cannot change it under us); each entry
            # holds its context, so none is freed while the copy is poked
            watched = self._counters.copy()
            if not watched:
                with self._lock:
                    if not self._counters:
                        self._thread = None
                        return
                continue
            late = cutoff.late_threads(time.monotonic(), TICK)
            if late:  # a thread a tick past its deadline: the handler was not asked (a parse), or is not
                for _, _, ref in watched.values():
                    state = ref()
                    if state is not None:
                        cutoff.cut(state, late)
                    state = None
            for _, counter, _ in watched.values():
                counter.value = 1
            watched.clear()


WATCHDOG = Watchdog()
