"""Test-only switches that weaken isolated workers, to check each layer alone.

They live in the host process and take effect when a worker starts (they are
part of its init message), so code running inside a worker can never reach
them. Tests use them as context managers:

- :func:`python_layers_off`: the worker runs scripts without the AST guard,
  with Python's full builtins (``eval``, ``open``, ``__import__``...) and
  without the audit hook, so script code is arbitrary Python and only the
  kernel's confinement stands in its way;
- :func:`kernel_mechanisms_off`: the worker behaves as if the kernel lacked
  the named mechanisms (``"landlock"``, ``"seccomp"``, ``"namespaces"``), to
  test the refusal to start and, with ``accept_weaker_isolation``, that the
  other layers still hold;
- :func:`cached_bytecode_off`: scripts loaded inside the block are compiled
  by their worker even when the host has their code cached (to measure what
  a warm load saves);
- :func:`interrupt_hook`: a function the canceller of an awaited call runs
  after it chose the request to interrupt and before it sends the
  interrupt, to widen the window in which that call ends and another
  starts (the cancellation race's test).

Trusted in-process code can call these (it can do anything anyway); no
policy, script or message from a worker can.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["SWITCHES", "Switches", "python_layers_off", "kernel_mechanisms_off", "cached_bytecode_off",
           "interrupt_hook"]


class Switches:
    """The current test switches (read when a worker is started)."""

    def __init__(self) -> None:
        self.python_layers = True
        self.unavailable: frozenset[str] = frozenset()
        self.worker_bytecode = True
        #: called by a cancelled awaited call's canceller before each interrupt it sends (see interrupt_hook)
        self.before_interrupt: Callable[[], None] | None = None
        self.lock = threading.Lock()


SWITCHES = Switches()


@contextmanager
def python_layers_off() -> Iterator[None]:
    """Workers started inside the block run without the guard, the curated
    builtins and the audit hook."""
    with SWITCHES.lock:
        before = SWITCHES.python_layers
        SWITCHES.python_layers = False
    try:
        yield
    finally:
        with SWITCHES.lock:
            SWITCHES.python_layers = before


@contextmanager
def kernel_mechanisms_off(*names: str) -> Iterator[None]:
    """Workers started inside the block treat ``names`` as missing from the kernel."""
    with SWITCHES.lock:
        before = SWITCHES.unavailable
        SWITCHES.unavailable = before | frozenset(names)
    try:
        yield
    finally:
        with SWITCHES.lock:
            SWITCHES.unavailable = before


@contextmanager
def cached_bytecode_off() -> Iterator[None]:
    """Workers compile the source of scripts loaded inside the block."""
    with SWITCHES.lock:
        before = SWITCHES.worker_bytecode
        SWITCHES.worker_bytecode = False
    try:
        yield
    finally:
        with SWITCHES.lock:
            SWITCHES.worker_bytecode = before


@contextmanager
def interrupt_hook(hook: Callable[[], None]) -> Iterator[None]:
    """Inside the block a cancelled awaited call's canceller runs ``hook``
    before each interrupt it sends to the worker."""
    with SWITCHES.lock:
        before = SWITCHES.before_interrupt
        SWITCHES.before_interrupt = hook
    try:
        yield
    finally:
        with SWITCHES.lock:
            SWITCHES.before_interrupt = before
