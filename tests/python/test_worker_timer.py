"""The worker's time limit keeps its kernel timer running between calls
(kryon_core/isolation/worker_timer.py): a timer an earlier call
armed must neither cut a later call short nor fire into an idle worker, and
every call still stops at its own limit."""

from __future__ import annotations

import time

import pytest

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.errors import ScriptTimeoutError

SOURCE = """\
import time

def quick():
    return 1

def busy(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n > 0

def forever():
    n = 0
    while True:
        n += 1
"""


@pytest.fixture
def manager():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=1.0), cache=False, output=lambda lang, text: None)
    m.load_script_from_source("t", "python", SOURCE)
    yield m
    m.close()


def test_a_timer_left_by_an_earlier_call_does_not_cut_a_later_one_short(manager) -> None:
    assert manager.call_function("t.quick") == 1  # arms the timer: it fires about 1 s from now
    time.sleep(0.6)
    # this call runs 0.6 s: the earlier timer fires about 0.4 s into it and must re-arm, not interrupt
    assert manager.call_function("t.busy", [0.6]) is True
    assert manager.engine("python").runtime.worker_info("t")["restarts"] == 0


def test_a_timer_firing_into_an_idle_worker_does_nothing(manager) -> None:
    assert manager.call_function("t.quick") == 1
    time.sleep(1.3)  # the timer fires while no call runs
    assert manager.call_function("t.quick") == 1
    assert manager.call_function("t.busy", [0.2]) is True


def test_every_call_still_stops_at_its_own_limit(manager) -> None:
    for _ in range(3):
        assert manager.call_function("t.quick") == 1
        with pytest.raises(ScriptTimeoutError):
            manager.call_function("t.forever")
    # the worker's own timer stopped the loop (Python code): it survived, with no restart
    assert manager.engine("python").runtime.worker_info("t")["restarts"] == 0
    assert manager.call_function("t.quick") == 1
