"""A Wren script holds host objects (DOM elements, user data, host functions,
other scripts' functions) as instances of the kryon module's HostRef and
HostFn, which carry the object's number in the script's registry. A script
used to make one itself (``HostRef.make(n)``, ``KryonHost.ref(n)``, a
subclass, or any object answering ``is`` and ``hostId``) and so name any
object of its registry: also one the host never handed to it (a call whose
arguments were refused after the object was registered), and a HostFn
(or ``KryonHost.invoke(n, args)``) called any registered object, a HostRef
that happens to be callable too. Now only the host makes those instances
(the classes have no constructor and are sealed), the VM, not Wren code,
says which objects they are, and ``invoke`` runs only a host function
handed to the script. Each attack is tried here; genuine objects still
come and go as themselves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from kryon_core import (
    AccessDeniedError,
    Document,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    SecurityPolicy,
    SizeLimitError,
    UserData,
)

pytest.importorskip("kryon_wren")
from kryon_wren.values import WrenObject  # noqa: E402

WREN = """\
import "kryon" for Kryon, HostRef, HostFn, KryonHost
class Fake {
  construct new(id) { _id = id }
  is(other) { other == HostRef || other == HostFn }
  hostId { _id }
  call() { "fake called" }
}
class W {
  static take(a, b) { "took" }
  static keep(x) {
    __kept = x
    return x.hostId
  }
  static kept { __kept }
  static makeRef(n) { HostRef.make(n) }
  static makeFn(n) { HostFn.make(n).call() }
  static helperRef(n) { KryonHost.ref(n) }
  static helperFn(n) { KryonHost.fn(n) }
  static fake(n) { Fake.new(n) }
  static fakeToHost(n) { Kryon.call("h.what", [[Fake.new(n)]]) }
  static invokeNumber(n) { KryonHost.invoke(n, []) }
  static invokeKept() { KryonHost.invoke(__kept, []) }
  static invokeFn() { KryonHost.invoke(Fn.new { "own" }, []) }
  static invokeFake(n) { KryonHost.invoke(Fake.new(n), []) }
  static invokeArgs(f) { KryonHost.invoke(f, "not a list") }
  static callIt(f) { f.call() }
  static callWith(f, x) { f.call(x) }
  static back(x) { x }
  static same(a, b) { a == b }
  static box { Kryon.getElementById("box") }
  static sameBox { box == Kryon.getElementById("box") }
  static setBox(v) {
    Kryon.setProperty(box, "x", v)
    return Kryon.getProperty(box, "x")
  }
}
"""

SUBCLASSES = {
    "ref": 'import "kryon" for HostRef\nclass E is HostRef {\n  construct new() {}\n}\n',
    "fn": 'import "kryon" for HostFn\nclass E is HostFn {\n  construct new() {}\n}\n',
}

HOST = """\
def what(xs):
    return [type(x).__name__ for x in xs]
def twice(x):
    return x * 2
"""


class Secret(UserData):
    """A host object the host means to hand over (a callable one, to see
    that a HostRef never runs as a function)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return "secret ran"


@pytest.fixture
def m() -> Iterator[ScriptManager]:
    manager = ScriptManager(policy=replace(SecurityPolicy.sandboxed(), max_value_size=20), cache=False,
                            output=lambda lang, text: None)
    doc = manager.setup_dom_bridge(Document())
    doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
    manager.load_script_from_source("h", "python", HOST, policy=SecurityPolicy.trusted())
    manager.expose("h.what")
    manager.load_script_from_source("w", "wren", WREN)
    yield manager
    manager.close()


def registry(m: ScriptManager) -> dict[int, Any]:
    return dict(m.engine("wren").script_state("w").objects)


def script_error(m: ScriptManager, name: str, args: list[Any]) -> ScriptError:
    with pytest.raises(ScriptError) as info:
        m.call_function(name, args)
    error = info.value
    assert error.script == "w" and error.language == "wren" and error.line is not None, error
    return error


def test_an_object_whose_hand_over_was_refused_cannot_be_named(m: ScriptManager) -> None:
    """The secret is registered while the arguments are converted, then the
    too-long string makes the call fail: the script never got it. It used
    to come back from ``HostRef.make(0)``."""
    secret = Secret("s3cret")
    with pytest.raises(SizeLimitError):
        m.call_function("w.W.take", [secret, "x" * 100])
    assert secret in registry(m).values()  # registered, never handed
    for n in range(4):
        for name in ("w.W.makeRef", "w.W.makeFn", "w.W.helperRef", "w.W.helperFn", "w.W.invokeNumber"):
            error = script_error(m, name, [n])
            assert "s3cret" not in str(error)
        faked = m.call_function("w.W.fake", [n])
        assert isinstance(faked, WrenObject), faked  # the script's own object, not the registry's
        assert m.call_function("w.W.fakeToHost", [n]) == ["WrenObject"]
    assert secret.calls == 0


@pytest.mark.parametrize("name", ["w.W.makeRef", "w.W.makeFn", "w.W.helperRef", "w.W.helperFn"])
@pytest.mark.parametrize("n", [0, 1, -1, 1.5, "0", 2**31, None])
def test_no_constructor_makes_a_host_object(m: ScriptManager, name: str, n: Any) -> None:
    m.call_function("w.W.keep", [Secret("held")])  # registry number 0 is in use
    error = script_error(m, name, [n])
    assert isinstance(error, ScriptRuntimeError)
    assert "does not implement" in str(error)
    assert m.call_function("w.W.kept", []).value == "held", "the script carries on"


@pytest.mark.parametrize("kind", sorted(SUBCLASSES))
def test_the_host_classes_cannot_be_subclassed(m: ScriptManager, kind: str) -> None:
    with pytest.raises(ScriptError, match="cannot inherit from built-in class 'Host(Ref|Fn)'") as info:
        m.load_script_from_source(f"sub_{kind}", "wren", SUBCLASSES[kind])
    assert info.value.language == "wren" and info.value.line == 2


def test_invoke_runs_only_a_host_function_handed_to_the_script(m: ScriptManager) -> None:
    secret = Secret("callable")
    assert m.call_function("w.W.keep", [secret]) == 0  # handed as a HostRef: not a function
    for name, args in [("w.W.invokeNumber", [0]), ("w.W.invokeNumber", [1]), ("w.W.invokeKept", []),
                       ("w.W.invokeFn", []), ("w.W.invokeFake", [0])]:
        error = script_error(m, name, args)
        assert isinstance(error, AccessDeniedError), (name, error)
    assert secret.calls == 0
    # a HostFn's own call is the one way in, with its arguments as a list
    twice = m.function("h.twice")
    assert m.call_function("w.W.callWith", [twice, 21]) == 42
    assert isinstance(script_error(m, "w.W.invokeArgs", [twice]), AccessDeniedError)


def test_genuine_host_objects_still_cross_as_themselves(m: ScriptManager) -> None:
    box = m.call_function("w.W.box", [])
    assert m.call_function("w.W.back", [box]) == box and m.call_function("w.W.sameBox", []) is True
    assert m.call_function("w.W.setBox", [5]) == 5
    secret = Secret("mine")
    assert m.call_function("w.W.back", [secret]) is secret
    assert m.call_function("w.W.same", [secret, secret]) is True
    fn = m.function("h.twice")
    assert m.call_function("w.W.back", [fn]) is fn
    assert m.call_function("w.W.callWith", [fn, 4]) == 8
    plain = lambda: "plain"  # noqa: E731
    assert m.call_function("w.W.callIt", [plain]) == "plain"


def test_a_released_function_ref_handed_to_the_script_is_a_clear_error(m: ScriptManager) -> None:
    fn = m.function("h.twice")
    assert m.call_function("w.W.keep", [fn]) >= 0
    fn.release()
    with pytest.raises(ScriptRuntimeError, match="function 'twice' was released"):
        m.call_function("w.W.callWith", [m.call_function("w.W.kept", []), 1])
    assert m.call_function("w.W.back", [3]) == 3, "the script carries on"


def test_each_script_names_only_its_own_objects() -> None:
    """Two scripts, each handed one object: neither reaches the other's,
    whatever number it tries (their registries are their own, and numbers
    cannot be made up anyway)."""
    manager = ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False, output=lambda lang, text: None)
    try:
        manager.load_script_from_source("h", "python", HOST, policy=SecurityPolicy.trusted())
        manager.load_script_from_source("w", "wren", WREN)
        manager.load_script_from_source("v", "wren", WREN)
        a, b = Secret("a"), Secret("b")
        assert manager.call_function("w.W.keep", [a]) == 0 and manager.call_function("v.W.keep", [b]) == 0
        assert manager.call_function("w.W.kept", []) is a and manager.call_function("v.W.kept", []) is b
        for script in ("w", "v"):
            for n in range(3):
                with pytest.raises(ScriptError):
                    manager.call_function(f"{script}.W.makeRef", [n])
    finally:
        manager.close()
