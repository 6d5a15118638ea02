"""kryon_core.awaited: the one deadline of an awaited call, on the timer of
Python 3.11's asyncio.timeout_at and on the wait_for fallback Python 3.10
takes; a TimeoutError the script raises itself is not the deadline's."""

from __future__ import annotations

import asyncio

import pytest

from kryon_core import ScriptError, ScriptManager, ScriptTimeoutError, SecurityPolicy, awaited

pytest.importorskip("kryon_python")

LIMIT = 0.5
SOURCE = """import asyncio
async def never():
    await asyncio.Event().wait()
async def own_timeout():
    await asyncio.sleep(0)
    raise TimeoutError("the script's own")
async def quick():
    await asyncio.sleep(0)
    return 7
"""


@pytest.fixture(params=["timeout_at", "wait_for"])
def m(request, monkeypatch):
    if request.param == "wait_for":
        monkeypatch.setattr(awaited, "_timeout_at", None)  # what Python 3.10 has
    elif awaited._timeout_at is None:
        pytest.skip("asyncio.timeout_at needs Python 3.11")
    mgr = ScriptManager(policy=SecurityPolicy.trusted(time_limit=LIMIT), cache=False)
    mgr.load_script_from_source("s", "python", SOURCE)
    yield mgr
    mgr.close()


def _await(m: ScriptManager, name: str):
    return asyncio.run(asyncio.wait_for(m.call_function_async(name), LIMIT * 12))


def test_the_deadline_ends_the_call(m):
    with pytest.raises(ScriptTimeoutError) as info:
        _await(m, "s.never")
    assert (info.value.script, info.value.line) == ("s", 3)
    assert _await(m, "s.quick") == 7


def test_the_scripts_own_timeout_error_is_not_the_deadline(m):
    with pytest.raises(ScriptError) as info:
        _await(m, "s.own_timeout")
    assert not isinstance(info.value, ScriptTimeoutError)
    assert "the script's own" in str(info.value)
