"""Bound handles (``manager.function``) of compiled Lua callers are instances
of kryon-core's vectorcalling FunctionRef subclass (``Caller.handle_type``,
``kryon_core.speedups.handle_type``), called straight through to their ``_call`` with no
Python frame in between, and they keep every promise of a FunctionRef: name,
language and script, following hot reloads, a clear error after unload or
release, conversion as a value, copies being the handle itself."""

import copy
import gc
import sys

import pytest

pytest.importorskip("kryon_lua")

from kryon_lua import ccall  # noqa: E402

from kryon_core import FunctionRef, ScriptManager, ScriptRuntimeError, SecurityPolicy, speedups  # noqa: E402

if not speedups.enabled():
    pytest.skip("without the compiled core, bound handles are plain FunctionRef.direct ones", allow_module_level=True)

SOURCE = """\
function add(a, b) return a + b end
function boom(x) error("bad " .. tostring(x)) end
function apply(f, a, b) return f(a, b) end
"""
POLICIES = pytest.mark.parametrize(
    "policy", [SecurityPolicy.sandboxed(time_limit=2, memory_limit=16 * 1024 * 1024), SecurityPolicy.trusted()],
    ids=["sandboxed", "trusted"])


@pytest.fixture(autouse=True)
def fresh_facts(monkeypatch):
    monkeypatch.setattr(ccall, "_facts", type(ccall._facts)())
    monkeypatch.delenv(ccall.ENV_OFF, raising=False)


def _manager(policy):
    m = ScriptManager(policy=policy, cache=False, output=lambda lang, text: None)
    m.load_script_from_source("s", "lua", SOURCE)
    return m


def _python_frames_during(fn, *args):
    """The Python functions entered while ``fn(*args)`` runs (none: it stays in C and Lua)."""
    entered = []

    def profile(frame, event, arg):
        if event == "call":
            entered.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        result = fn(*args)
    finally:
        sys.setprofile(None)
    return result, entered


@POLICIES
def test_a_handle_is_the_cores_functionref_called_with_no_python_frame(policy):
    m = _manager(policy)
    try:
        add = m.function("s.add")
        assert isinstance(add, FunctionRef) and type(add) is speedups.handle_type() is not None
        assert (add.name, add.language, add.script, add.alive) == ("add", "lua", "s", True)
        assert repr(add) == "<FunctionRef lua:s.add>"
        assert copy.copy(add) is add and copy.deepcopy(add) is add
        result, frames = _python_frames_during(add, 40, 2)
        # (the sandbox's count hook may ask the host for the time once in 1000 instructions)
        assert result == 42 and [f for f in frames if f != "_check_time"] == []
        assert add.call([1, 2]) == 3  # the manager's calling convention
        with pytest.raises(ScriptRuntimeError) as info:
            m.function("s.boom")(7)
        assert (info.value.script, info.value.line, info.value.language) == ("s", 2, "lua")
        with pytest.raises(TypeError):
            add(1, b=2)  # keywords: refused, as FunctionRef.__call__ refuses them
        assert m.call_function("s.apply", [add, 5, 6]) == 11  # crosses back into Lua as a function
    finally:
        m.close()


def test_a_handle_follows_reloads_and_fails_clearly_after_unload_or_release():
    m = _manager(SecurityPolicy.trusted())
    try:
        add, other = m.function("s.add"), m.function("s.add")
        assert add(1, 2) == 3
        m.hot_reload_script("s", SOURCE.replace("return a + b", "return a * b"))
        assert add(3, 4) == 12 and type(add) is speedups.handle_type()
        m.hot_reload_script("s", SOURCE.replace("function add(a, b) return a + b end",
                                                "function add(...) local a, b = ... return a - b end"))
        assert add(10, 4) == 6  # a variadic function: the Python caller, through the same handle
        other.release()
        assert not other.alive
        with pytest.raises(ScriptRuntimeError, match="was released"):
            other(1, 2)
        assert add(2, 1) == 1
        m.unload_script("s")
        with pytest.raises(ScriptRuntimeError, match="was released") as info:
            add(1, 2)
        assert (info.value.script, info.value.language) == ("s", "lua")
    finally:
        m.close()


def test_a_dropped_handle_is_collected_and_the_state_keeps_working():
    m = _manager(SecurityPolicy.trusted())
    try:
        for i in range(200):
            assert m.function("s.add")(i, 1) == i + 1
        gc.collect()
        assert m.function("s.add")(1, 1) == 2 and m.call_function("s.add", [2, 2]) == 4
    finally:
        m.close()


def test_without_the_extension_a_handle_is_a_plain_direct_functionref(monkeypatch):
    monkeypatch.setenv(ccall.ENV_OFF, "1")
    m = _manager(SecurityPolicy.trusted())
    try:
        add = m.function("s.add")
        assert isinstance(add, FunctionRef) and type(add).__module__ == "kryon_core.values"
        assert add(2, 3) == 5
        m.unload_script("s")
        with pytest.raises(ScriptRuntimeError, match="was released"):
            add(1, 2)
    finally:
        m.close()
