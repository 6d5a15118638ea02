"""A debugging session for the tests of a debug target.

A debugged call blocks where it stops, so :class:`DebugSession` runs each
call on a thread of its own and hands the test the stops and the results
through queues, waiting at most ``timeout`` seconds for either (a target
that never stops fails the test instead of hanging it). The steps every
target's tests take come as one call each: :meth:`DebugSession.stop_at`
(a breakpoint, a call, the stop), :meth:`DebugSession.step` (resume the
stopped thread one way, the next stop) and :meth:`DebugSession.stack`.
"""

from __future__ import annotations

import queue
import sys
import threading
import traceback
from typing import Any

from ..debug import BreakpointSpec, Frame, Stop, Variable
from ..errors import ScriptError
from ..manager import ScriptManager

__all__ = ["DebugSession"]


class DebugSession:
    """``manager`` with its debugger attached (``dbg``); scripts are loaded by the caller."""

    def __init__(self, manager: ScriptManager, timeout: float = 10) -> None:
        self.m = manager
        self.dbg = manager.debugger()
        self.timeout = timeout
        self.stops: queue.Queue[Stop] = queue.Queue()
        self.dbg.on_stop = self.stops.put
        self.results: queue.Queue[Any] = queue.Queue()

    def run(self, name: str, *args: Any) -> threading.Thread:
        """Call ``name`` on a new thread; its result (or ScriptError) goes to :meth:`result`."""

        def body() -> None:
            try:
                self.results.put(self.m.call_function(name, list(args)))
            except ScriptError as exc:
                self.results.put(exc)

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return thread

    def stop(self) -> Stop:
        """The next stop the debugger reports."""
        try:
            return self.stops.get(timeout=self.timeout)
        except queue.Empty:
            raise AssertionError(f"no stop within {self.timeout} s\n{self._where()}") from None

    def stop_at(self, script: str, line: int, name: str, *args: Any) -> Stop:
        """Set ``script``'s breakpoints to ``line`` alone, call ``name`` and
        return the stop it comes to."""
        self.dbg.set_breakpoints(script, [BreakpointSpec(line)])
        self.run(name, *args)
        return self.stop()

    def step(self, stop: Stop, how: str) -> Stop:
        """Resume the thread of ``stop`` one way (``"next"``, ``"stepIn"``,
        ``"stepOut"``) and return the next stop."""
        self.dbg.resume(stop.thread, how)
        return self.stop()

    def result(self) -> Any:
        """The next finished call's result, or the ScriptError it raised."""
        try:
            return self.results.get(timeout=self.timeout)
        except queue.Empty:
            raise AssertionError(f"no result within {self.timeout} s\n{self._where()}") from None

    def _where(self) -> str:
        """What a test that waited in vain needs to be understood: the
        debugger's stopped threads and every thread's Python stack."""
        lines = [f"stopped: {self.dbg.stopped()!r}"]
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            lines.append(f"-- thread {names.get(ident, ident)}")
            lines.extend(traceback.format_stack(frame))
        return "\n".join(lines)

    def stack(self, stop: Stop) -> list[Frame]:
        """The frames of the stopped thread, innermost first."""
        frames: list[Frame] = self.dbg.stack(stop.thread)
        return frames

    def top(self, stop: Stop) -> Frame:
        """The innermost frame of the stopped thread."""
        return self.stack(stop)[0]

    def scope(self, frame_id: int, name: str = "Locals") -> dict[str, Variable]:
        """The variables of one named scope of a frame, by name."""
        scopes = {s.name: s for s in self.dbg.scopes(frame_id)}
        return {v.name: v for v in self.dbg.variables(scopes[name].reference)}

    def close(self) -> None:
        self.dbg.detach()
        self.m.close()
