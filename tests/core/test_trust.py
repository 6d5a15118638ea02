"""Trust between scripts: a script never gains, through another script, what
its own policy denies (calls, FunctionRefs handed across, shared data), and
no script grows the host past its shared-data quota."""

from __future__ import annotations

import pytest
from prog_engine import prog_manager

from kryon_core import (
    AccessDeniedError,
    Document,
    MemoryLimitError,
    SecurityPolicy,
)

TRUSTED = SecurityPolicy.trusted()
SANDBOXED = SecurityPolicy.sandboxed()


@pytest.fixture
def m():
    manager = prog_manager()
    yield manager
    manager.close()


def load(m, name, source, policy=SANDBOXED):
    return m.load_script_from_source(name, "prog", source, policy=policy)


APP = """
import os
def getenv(name): return os.environ.get(name)
def secret(): return "s3cret"
def give_secret(): return ref(secret)
def give_host_function(): return os.getcwd
def add(a, b): return a + b
"""


def test_sandboxed_cannot_call_trusted_without_export(m):
    load(m, "app", APP, TRUSTED)
    load(m, "plugin", "def ask(n): return kryon.call('app.getenv', n)\ndef bare(): return kryon.call('getenv', 'HOME')")
    for call in (lambda: m.call_function("plugin.ask", ["HOME"]), lambda: m.call_function("plugin.bare")):
        with pytest.raises(AccessDeniedError, match="may not call 'app.getenv'") as info:
            call()
        assert info.value.script == "plugin"


def test_host_export_to_everyone_and_to_named_scripts(m):
    load(m, "app", APP, TRUSTED)
    load(m, "plugin", "def ask(): return kryon.call('app.add', 2, 3)")
    load(m, "other", "def ask(): return kryon.call('app.add', 2, 3)")
    m.expose("app.add", to=["plugin"])
    assert m.call_function("plugin.ask") == 5
    with pytest.raises(AccessDeniedError):
        m.call_function("other.ask")
    m.expose("app.add")
    assert m.call_function("other.ask") == 5
    m.unexpose("app.add")
    with pytest.raises(AccessDeniedError):
        m.call_function("plugin.ask")


def test_export_declared_by_the_script_itself(m):
    load(m, "app", "kryon.expose('add', ['plugin'])\ndef add(a, b): return a + b\ndef sub(a, b): return a - b", TRUSTED)
    load(m, "plugin", "def ask(): return kryon.call('app.add', 2, 3)\ndef sub(): return kryon.call('app.sub', 2, 3)")
    assert m.call_function("plugin.ask") == 5
    with pytest.raises(AccessDeniedError):
        m.call_function("plugin.sub")


def test_downward_and_sideways_calls_need_no_export(m):
    load(m, "box", "def add(a, b): return a + b\ndef peer(): return kryon.call('box2.add', 1, 1)")
    load(m, "box2", "def add(a, b): return a + b")
    load(m, "app", "def use(): return kryon.call('box.add', 1, 2)", TRUSTED)
    assert m.call_function("app.use") == 3
    assert m.call_function("box.peer") == 2


def test_grants_order_sandboxed_policies(m):
    files = SecurityPolicy.sandboxed(allow_file_system=True)
    load(m, "reader", "def read(): return 'contents'", files)
    load(m, "plain", "def ask(): return kryon.call('reader.read')")
    with pytest.raises(AccessDeniedError):
        m.call_function("plain.ask")
    load(m, "granted", "def ask(): return kryon.call('reader.read')", files)
    assert m.call_function("granted.ask") == "contents"
    assert files.covers(SANDBOXED) and not SANDBOXED.covers(files)
    assert SecurityPolicy.sandboxed(allowed_modules={"json", "re"}).covers(SecurityPolicy.sandboxed(allowed_modules={"json"}))
    assert not SecurityPolicy.sandboxed(allowed_modules={"json"}).covers(SecurityPolicy.sandboxed(allowed_modules={"re"}))


def test_functions_of_a_more_trusted_script_are_not_handed_across(m):
    load(m, "app", APP, TRUSTED)
    m.expose("app.give_secret")
    m.expose("app.give_host_function")
    load(m, "plugin", "def get(): return kryon.call('app.give_secret')\ndef host(): return kryon.call('app.give_host_function')")
    with pytest.raises(AccessDeniedError, match="app.secret"):
        m.call_function("plugin.get")
    with pytest.raises(AccessDeniedError, match="host function"):
        m.call_function("plugin.host")
    m.expose("app.secret")
    assert m.call_function("plugin.get")() == "s3cret"


def test_shared_data_follows_trust(m):
    load(m, "app", "kryon.create_shared('keys', {'token': 't'})\n"
                   "kryon.create_shared('open', 1, {'read': ['prog'], 'write': ['prog']})", TRUSTED)
    load(m, "plugin", "def peek(i): return kryon.get_shared(i)\ndef poke(i, v): kryon.set_shared(i, v)")
    with pytest.raises(AccessDeniedError, match="may not read shared object 'keys'"):
        m.call_function("plugin.peek", ["keys"])
    with pytest.raises(AccessDeniedError):
        m.call_function("plugin.poke", ["keys", {}])
    assert m.call_function("plugin.peek", ["open"]) == 1  # granted by name
    m.call_function("plugin.poke", ["open", 2])
    m.shared.create("from_host", [1])  # the host shares deliberately
    assert m.call_function("plugin.peek", ["from_host"]) == [1]
    load(m, "box", "kryon.create_shared('box_data', 5)")
    load(m, "app2", "def peek(): return kryon.get_shared('box_data')", TRUSTED)
    assert m.call_function("app2.peek") == 5  # the more trusted reads the less trusted


def test_functions_in_shared_data_and_events_are_admitted(m):
    doc = m.setup_dom_bridge(Document())
    load(m, "app", APP + "\nkryon.create_shared('cb', [ref(secret)], {'read': ['prog']})", TRUSTED)
    got = []
    load(m, "plugin", "def peek(): return kryon.get_shared('cb')\n"
         "def listen(el): kryon.add_event_listener(el, 'ping', ref(lambda e: got.append(e['data'])))", SANDBOXED)
    m.engine("prog").namespaces["plugin"]["got"] = got
    with pytest.raises(AccessDeniedError, match="app.secret"):
        m.call_function("plugin.peek")
    el = doc.create_element("div", {"id": "x"})
    m.call_function("plugin.listen", [el])
    doc.emit_custom_event(el, "ping", {"n": 1})
    assert got == [{"n": 1}]
    secret_ref = m.engine("prog").namespaces["app"]["ref"](m.engine("prog").namespaces["app"]["secret"])
    doc.emit_custom_event(el, "ping", {"f": secret_ref})  # refused before it reaches the listener
    assert got == [{"n": 1}]


def test_shared_data_quotas(m):
    small = SecurityPolicy.sandboxed(max_shared_entries=3, max_shared_bytes=10_000)
    load(m, "s", "def make(i, v): kryon.create_shared(i, v)\ndef put(i, v): kryon.set_shared(i, v)", small)
    for i in range(3):
        m.call_function("s.make", [f"o{i}", "x"])
    with pytest.raises(MemoryLimitError, match="max_shared_entries"):
        m.call_function("s.make", ["o3", "x"])
    with pytest.raises(MemoryLimitError, match="max_shared_bytes"):
        m.call_function("s.put", ["o0", "y" * 20_000])
    assert m.shared.read("o0") == "x"  # a refused write changes nothing
    for _ in range(50):  # overwriting replaces the charge instead of adding to it
        m.call_function("s.put", ["o1", "z" * 3_000])
    used = m.shared.usage("prog", "s")
    assert used.entries == 3 and 3_000 < used.bytes < 10_000
    m.shared.delete("o2")
    m.call_function("s.make", ["o4", "x"])  # a deleted object frees its entry


def test_big_values_through_many_entries_are_bounded(m):
    load(m, "hog", "def fill(n):\n    for i in range(n): kryon.create_shared(f'k{i}', 'x' * 100_000)")
    with pytest.raises(MemoryLimitError):
        m.call_function("hog.fill", [1000])
    assert m.shared.usage("prog", "hog").bytes <= SANDBOXED.max_shared_bytes
