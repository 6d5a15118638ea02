"""``kryon.call(name, ...args)`` out of JavaScript has its own way into the
host when the name is a string and there are at most three arguments, each a
scalar that crosses as it is (``prelude.js`` ``callMethod`` ->
``kryon_js.inbound.routed_call_for``, made per script for its bridge view: straight
to the script's cached route). It must do what the general path (``callHost``
-> ``host_call`` -> ``ScriptBridge.call``) does: the same caller is loaded
twice, once without the entry (``ROUTED_CALL`` emptied while it loads), and
every call must give the same result and the same error in both. The calls
into JavaScript nested inside a host callback (the generated caller's
nested branch, ``calls.caller_source``) are covered here too: JS -> JS
through ``kryon.call``."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest

from kryon_core import (
    AccessDeniedError,
    FunctionRef,
    RecursionLimitError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
    SizeLimitError,
)

pytest.importorskip("kryon_js")

import kryon_js.state  # noqa: E402

JS = "javascript"
LIMIT = 1000  # max_value_size of the sandboxed policy here ("=long" is one longer)

CALLER = """
const SPECIAL = { negZero: -0, nan: NaN, inf: Infinity, half: 2.5, whole: 3.0, big: 2 ** 53 + 2, int32: 2 ** 31,
                  undef: undefined, nul: null, t: true, f: false, s: "word", astral: "\\u{1F600}", lone: "\\uD800",
                  nul0: "a\\u0000b", obj: { a: 1 }, list: [1, 2], long: "v".repeat(1001), big2: 10n ** 20n,
                  fn: function cb(x) { return x; } };
function arg(x) { return typeof x === "string" && x[0] === "=" ? SPECIAL[x.slice(1)] : x; }
function op(...xs) {   // kryon.call(...xs), "=name" meaning a value made here
  try { const r = kryon.call(...xs.map(arg)); return ["ok", r === undefined ? "undefined" : r]; }
  catch (e) { return ["error", e.name + ": " + String(e.message).slice(0, 300)]; }
}
function raw(...xs) { return kryon.call(...xs.map(arg)); }
function loop(name, n) { for (let i = 0; i < n; i++) kryon.call(name, i); return n; }
"""

TARGET = """
def kinds(*a):
    return [[type(x).__name__, repr(x)] for x in a]
def echo(*a):
    return list(a)
def ident(x=None):
    return x
def boom(x=None):
    raise ValueError("boom " + repr(x))
def big(x=None):
    return 2 ** 40
def text(x=None):
    return "caf\\u00e9"
def long():
    return "x" * 2000
def helper():
    return ident
"""

JS_TARGET = """
function jsident(x) { return x; }
function jsthrow(x) { throw new RangeError("bad " + x); }
function jsobj(x) { return { x: x, list: [x, x] }; }
let probe = null;
function setProbe(f) { probe = f; }
function jsprobe() { return probe(); }
function jsback(n) { return n <= 0 ? 0 : 1 + kryon.call("fast.back", n - 1); }
"""

VALUES = ["=negZero", "=nan", "=inf", "=half", "=whole", "=big", "=int32", "=undef", "=nul", "=t", "=f", "=s",
          "=astral", "=lone", "=nul0", "=obj", "=list", "=long", "=big2", "=fn", 7, -(2**31), "text"]
NAMES = ["tgt.kinds", "tgt.echo", "tgt.ident", "tgt.boom", "jst.jsident", "jst.jsthrow", "jst.jsobj", "nope.nothing",
         "kinds", "=long", "=lone", "=nul0", 3, "=nul"]


class Pair:
    """One manager; the caller loaded with (``fast``) and without (``general``) kryon.call's own entry."""

    def __init__(self, policy: SecurityPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mgr = ScriptManager(cache_dir=False, policy=policy, output=lambda lang, text: None)
        self.calls: list[tuple[object, ...]] = []
        real = kryon_js.state.routed_call_for

        def counting(state, view):
            entry = real(state, view)

            def call(name, *args):
                self.calls.append((state.script, name, *args))
                return entry(name, *args)

            return call

        # the entry is made per script as it loads: count through the function that makes it
        monkeypatch.setattr(kryon_js.state, "routed_call_for", counting)
        self.mgr.load_script_from_source("tgt", "python", TARGET)
        self.mgr.load_script_from_source("jst", JS, JS_TARGET)
        self.mgr.load_script_from_source("fast", JS, CALLER + "function back(n) { return kryon.call('jst.jsback', n); }")
        with monkeypatch.context() as patch:
            patch.setattr(kryon_js.state, "ROUTED_CALL", "")
            self.mgr.load_script_from_source("general", JS, CALLER)

    def both(self, fn: str, *args: object) -> tuple[object, object]:
        return self.mgr.call_function(f"fast.{fn}", list(args)), self.mgr.call_function(f"general.{fn}", list(args))


def _comparable(value: object) -> object:
    """Values compared exactly: types kept, NaN equal to itself, -0.0 apart from 0.0; the caller's name
    left out of messages."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    if isinstance(value, str):
        for caller in ("fast", "general"):
            value = value.replace(f"'{caller}'", "'CALLER'").replace(f":{caller}.", ":CALLER.")
        return ("str", re.sub(r"<host function \d+>", "<host function>", value))
    if isinstance(value, FunctionRef):  # a script's function handed back: its own script's
        return ("FunctionRef", value.name, value.language, value.script in ("fast", "general"))
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    return (type(value).__name__, value)


@pytest.fixture(params=["trusted", "sandboxed"])
def pair(request, monkeypatch) -> Iterator[Pair]:
    policy = SecurityPolicy.trusted() if request.param == "trusted" else SecurityPolicy.sandboxed(max_value_size=LIMIT)
    p = Pair(policy, monkeypatch)
    yield p
    p.mgr.close()


def _same(pair: Pair, *args: object) -> object:
    fast, general = pair.both("op", *args)
    assert _comparable(fast) == _comparable(general), args
    return fast


@pytest.mark.parametrize("name", NAMES)
def test_every_name_and_argument_gives_what_the_general_path_gives(pair, name):
    _same(pair, name)
    for value in VALUES:
        _same(pair, name, value)
        _same(pair, name, 1, value)
        _same(pair, name, value, "s", value)
    _same(pair, name, 1, 2, 3, 4)  # four arguments: the general path
    _same(pair)  # no name at all


def test_scalars_arrive_as_the_general_path_gives_them(pair):
    fast = _same(pair, "tgt.kinds", "=negZero", "=big", "=whole")
    assert fast == ["ok", [["float", "-0.0"], ["float", repr(float(2**53 + 2))], ["int", "3"]]]
    assert _same(pair, "tgt.kinds", "=big2")[1] == [["int", str(10**20)]]  # a BigInt: exact (as JSON)


@pytest.mark.parametrize("target", ["tgt.big", "tgt.text", "tgt.echo", "jst.jsobj"])
def test_results_that_need_converting_come_back_alike(pair, target):
    fast, general = pair.both("raw", target, 2)
    assert fast == general and fast is not None


def test_the_entry_is_taken_for_scalars_only(pair):
    pair.calls.clear()
    pair.mgr.call_function("fast.op", ["tgt.ident", "=half"])
    pair.mgr.call_function("fast.op", ["tgt.kinds", 1, "=t", "=undef"])
    pair.mgr.call_function("fast.op", ["tgt.kinds"])
    pair.mgr.call_function("general.op", ["tgt.ident", 1])
    for args in (["tgt.ident", "=obj"], ["tgt.ident", "=lone"], ["tgt.ident", "=big2"], ["tgt.ident", "=fn"],
                 ["tgt.kinds", 1, 2, 3, 4], ["=lone", 1], [3, 1]):
        pair.mgr.call_function("fast.op", args)  # each takes the general path
    assert pair.calls == [("fast", "tgt.ident", 2.5), ("fast", "tgt.kinds", 1, True, None), ("fast", "tgt.kinds")]
    assert pair.mgr.call_function("fast.loop", ["tgt.ident", 20]) == 20
    assert len(pair.calls) == 23


def test_errors_carry_the_script_and_line(pair):
    for script in ("fast", "general"):
        with pytest.raises(ScriptRuntimeError, match="boom 1") as info:
            pair.mgr.call_function(f"{script}.raw", ["tgt.boom", 1])
        assert info.value.language == JS and info.value.script == script and info.value.line == 11
        with pytest.raises(Exception, match="nope.nothing") as info:
            pair.mgr.call_function(f"{script}.raw", ["nope.nothing", 1])
        assert info.value.script == script and info.value.line == 11
        with pytest.raises(ScriptRuntimeError, match="bad 2") as info:
            pair.mgr.call_function(f"{script}.raw", ["jst.jsthrow", 2])
        assert info.value.script == script and info.value.line == 11


def test_size_limits_hold_on_the_entry(monkeypatch):
    p = Pair(SecurityPolicy.sandboxed(max_value_size=LIMIT), monkeypatch)
    with p.mgr:
        for args in (["tgt.ident", "=long"], ["=long"], ["tgt.kinds", 1, "=long"]):
            p.calls.clear()
            with pytest.raises(SizeLimitError, match="a string crossing"):
                p.mgr.call_function("fast.raw", args)
            assert len(p.calls) == 1  # refused by the entry itself
            with pytest.raises(SizeLimitError, match="a string crossing"):
                p.mgr.call_function("general.raw", args)
        for script in ("fast", "general"):  # a result over the limit
            with pytest.raises(SizeLimitError):
                p.mgr.call_function(f"{script}.raw", ["tgt.long"])


TRUSTED_APP = "def secret():\n    return 's3cret'\ndef add(a, b):\n    return a + b\n"


@pytest.mark.parametrize("script", ["fast", "general"])
def test_a_sandboxed_caller_needs_an_export_to_call_a_trusted_script(monkeypatch, script):
    p = Pair(SecurityPolicy.sandboxed(max_value_size=LIMIT), monkeypatch)
    with p.mgr:
        p.mgr.load_script_from_source("app", "python", TRUSTED_APP, policy=SecurityPolicy.trusted())
        for _ in range(2):  # the refusal is not cached as a route
            with pytest.raises(AccessDeniedError, match="may not call 'app.secret'") as info:
                p.mgr.call_function(f"{script}.raw", ["app.secret"])
            assert info.value.script == script
        p.mgr.expose("app.add", to=[script])
        assert p.mgr.call_function(f"{script}.raw", ["app.add", 2, 3]) == 5
        with pytest.raises(AccessDeniedError):
            p.mgr.call_function(f"{script}.raw", ["app.secret"])
        p.mgr.unexpose("app.add")
        with pytest.raises(AccessDeniedError):  # the cached route is checked again
            p.mgr.call_function(f"{script}.raw", ["app.add", 2, 3])


def test_function_refs_cross_by_the_general_path_and_come_back_callable(pair):
    pair.mgr.evaluate(JS, script="fast", code="function viaRef() { const f = kryon.call('tgt.helper'); return f(41); }")
    assert pair.mgr.call_function("fast.viaRef") == 41
    ref = pair.mgr.call_function("tgt.ident", [pair.mgr.evaluate(JS, script="fast", code="(x) => x + 1")])
    assert isinstance(ref, FunctionRef) and ref(1) == 2


def test_js_calls_js_nested_through_the_host(pair):
    """fast.back -> jst.jsback -> fast.back ...: every call into JavaScript nests inside a host callback."""
    for n in (0, 1, 10, 25):
        assert pair.mgr.call_function("fast.back", [n]) == n
    assert pair.mgr.call_function("fast.loop", ["jst.jsident", 50]) == 50
    assert pair.mgr.call_function("fast.raw", ["jst.jsobj", 3]) == {"x": 3, "list": [3, 3]}
    with pytest.raises(RecursionLimitError):  # the nesting limit, through the nested entry
        pair.mgr.call_function("fast.back", [10_000])
    assert pair.mgr.call_function("fast.back", [5]) == 5  # and everything works afterwards
    engine = pair.mgr.engine(JS)
    for value in vars(engine).values():  # the stack budget of every script back to its own size
        if isinstance(value, dict):
            for state in value.values():
                if isinstance(state, kryon_js.state.ScriptState):
                    assert state.current_stack == state.stack_size and not state.stack_sizes


def test_the_time_limit_holds_across_the_call():
    with ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(time_limit=0.3),
                       output=lambda lang, text: None) as mgr:
        mgr.load_script_from_source("tgt", "python", TARGET)
        mgr.load_script_from_source("jst", JS, JS_TARGET + "function spin() { for (;;) {} }")
        mgr.load_script_from_source("c", JS, CALLER + "function forever() { for (let i = 0; ; i++) kryon.call('tgt.ident', i); }")
        with pytest.raises(ScriptTimeoutError):
            mgr.call_function("c.forever")
        with pytest.raises(ScriptTimeoutError):  # a JS callee that never returns, nested in the call
            mgr.call_function("c.raw", ["jst.spin"])
        assert mgr.call_function("c.loop", ["jst.jsident", 3]) == 3  # both scripts still work afterwards
        assert mgr.call_function("c.raw", ["jst.jsident", 4]) == 4


def _state(mgr: ScriptManager, script: str) -> kryon_js.state.ScriptState:
    for value in vars(mgr.engine(JS)).values():
        if isinstance(value, dict):
            for state in value.values():
                if isinstance(state, kryon_js.state.ScriptState) and state.script == script:
                    return state
    raise LookupError(script)


def test_a_js_callee_nested_through_the_entry_gets_a_share_of_the_stack(pair):
    """kryon.call's entry marks the thread as inside a host callback, so a JavaScript callee enters
    nested: with part of its stack budget (the rule of ScriptState._shrink), which it has back afterwards."""
    jst = _state(pair.mgr, "jst")
    seen: list[int] = []
    pair.mgr.call_function("jst.setProbe", [lambda: seen.append(jst.current_stack) or len(seen)])
    assert pair.mgr.call_function("jst.jsprobe") == 1  # from the host: not nested
    for script in ("fast", "general"):
        pair.calls.clear()
        assert pair.mgr.call_function(f"{script}.raw", ["jst.jsprobe"]) == len(seen)
        assert len(pair.calls) == (script == "fast")
    assert seen[0] == jst.stack_size and seen[1] == seen[2] < jst.stack_size
    assert jst.current_stack == jst.stack_size and not jst.stack_sizes


@pytest.mark.parametrize("routed", ["call", ""])
def test_a_bridge_without_a_manager_says_so_on_both_paths(monkeypatch, routed):
    from kryon_js.engine import JSEngine

    from kryon_core import ScriptBridge
    from kryon_core.engine import EngineConfig

    monkeypatch.setattr(kryon_js.state, "ROUTED_CALL", routed)
    taken: list[str] = []
    real = kryon_js.state.routed_call_for

    def made(state, view):
        entry = real(state, view)
        return lambda name, *a: taken.append(name) or entry(name, *a)

    monkeypatch.setattr(kryon_js.state, "routed_call_for", made)
    engine = JSEngine()
    engine.initialize(EngineConfig())
    engine.setup_bridge(ScriptBridge(JS))
    source = "function f() { try { kryon.call('x.y', 1); } catch (e) { return e.name + ': ' + e.message; } }"
    sid = engine.load_script(engine.compile(source, "s"), policy=SecurityPolicy.trusted())
    try:
        assert engine.call_function("f", [], script=sid) == "ScriptError: kryon.call needs a ScriptManager"
        assert taken == (["x.y"] if routed else [])
    finally:
        engine.unload_script(sid)
