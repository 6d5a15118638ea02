"""The recursion limit's driver, shared by the Python and Lisp tests: for
each way into a script (a call, an awaited call, a load's top level, a
function handed to the host and called back, a call from the host while the
script waits for it), a recursion of ``max_recursion - 1`` and of
``max_recursion`` frames runs, one of ``max_recursion + 1`` frames is a
``RecursionLimitError`` naming the script, its line and its language, and
the script keeps working after.

``source`` defines, in the script's language (``kryon`` imported):
``depth(n)`` (n nested frames, returns n), ``adepth(n)`` (an async function
returning ``depth(n)``: n + 1 frames), ``give()`` (returns ``depth``), ``reenter(k)`` (the
script asks the host to call its own ``depth(k)`` through ``kryon.call``: k + 1 frames),
``talk(n)`` (n nested frames, the innermost asks the host for the variable
``x``), ``gen(n)`` (a generator yielding ``depth(n)``: n + 1 frames).
``evaluation(n)`` is code that evaluates to ``depth(n)``. ``load_source(n)`` is a script whose top level computes ``depth(n)``
(its top level is one frame more). ``line`` is the line of ``depth``'s call
of itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from kryon_core import Document, RecursionLimitError, ScriptManager, SecurityPolicy

LIMIT = 100


def _fails(run: Callable[[], Any], script: str, language: str, line: int) -> None:
    with pytest.raises(RecursionLimitError) as info:
        run()
    err = info.value
    assert (err.script, err.language) == (script, language), err
    # the line of the recursion (a limit hit in a call from the host names the line that asked the host
    # first: the recursion's line is further in on the stack)
    assert err.line == line or line in [f.line for f in err.stack if f.script == script], err.stack


def check_entries(language: str, source: str, load_source: Callable[[int], str], line: int,
                  evaluation: Callable[[int], str], *, sandboxed: bool = True) -> None:
    make = SecurityPolicy.sandboxed if sandboxed else SecurityPolicy.trusted
    with ScriptManager(cache=False, policy=make(max_recursion=LIMIT, time_limit=10)) as m:
        m.setup_dom_bridge(Document()).set_variable("x", 7)
        m.load_script_from_source("r", language, source)
        entries: dict[str, Callable[[int], Any]] = {
            "call": lambda n: m.call_function("r.depth", [n]),
            # the async function's own frame is one of them
            "awaited call": lambda n: asyncio.run(m.call_function_async("r.adepth", [n - 1])) + 1,
            "callback": lambda n: m.call_function("r.give")(n),
            # the generator's frame is one of them (its items are listed in the script's runtime)
            "generator": lambda n: m.call_function("r.gen", [n - 1])[0] + 1,
            # the evaluated code's frame is one of them
            "evaluation": lambda n: m.evaluate(language, evaluation(n - 1), script="r") + 1,
            # the waiting frame of reenter is one of them
            "call from the host while the script waits": lambda n: m.call_function("r.reenter", [n - 1]) + 1,
        }
        for kind, run in entries.items():
            for n in (LIMIT - 1, LIMIT):
                assert run(n) == n, f"{kind}: {n} frames are within the limit"
            for n in (LIMIT + 1, 10 * LIMIT):
                _fails(partial(run, n), "r", language, line)
            assert m.call_function("r.depth", [3]) == 3, f"{kind}: the script works after"
        # the script deep in its recursion still asks the host (its call out takes a few frames)
        assert m.call_function("r.talk", [LIMIT - 5]) == 7
        # a load's top level is a frame of its own
        m.load_script_from_source("l1", language, load_source(LIMIT - 1))
        _fails(lambda: m.load_script_from_source("l2", language, load_source(LIMIT)), "l2", language, line)
        assert "l2" not in m.scripts and m.call_function("l1.depth", [LIMIT]) == LIMIT
