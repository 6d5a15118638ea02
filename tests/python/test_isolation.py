"""kryon_core.isolation used directly, the way another language (kryon-lisp)
uses it: its own compiler inside the worker, its own names for the API."""

from __future__ import annotations

import sys

import pytest

from kryon_core import AccessDeniedError, CompileError, Document, ScriptBridge, SecurityPolicy
from kryon_core.isolation import CompilerSpec, IsolatedRuntime, limits_for, protocol

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")

# A toy language: Python where "fn" means "def". Its compiler module lives in
# a temporary directory on sys.path (the worker gets the host's sys.path).
TOY_COMPILER = '''
import ast
import toy_runtime  # loaded before the sandbox is armed

def compile(source, filename):
    return ast.parse(source.replace("fn ", "def "), filename, "exec")
'''
TOY_RUNTIME = "def shout(text):\n    return text.upper() + '!'\n"


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_compiler.py").write_text(TOY_COMPILER)
    (tmp_path / "toy_runtime.py").write_text(TOY_RUNTIME)
    monkeypatch.syspath_prepend(str(tmp_path))
    rt = IsolatedRuntime(
        "toy",
        compiler=CompilerSpec(name="toy_compiler:compile", preload=("toy_runtime",), runtime_imports=("toy_runtime",)),
    )
    yield rt
    rt.close()


def test_a_compiler_supplied_by_another_language(toy: IsolatedRuntime) -> None:
    policy = SecurityPolicy.sandboxed()
    functions = toy.load("t", "import toy_runtime\nfn greet(name):\n    return toy_runtime.shout('hi ' + name)\n", policy=policy)
    assert list(functions) == ["greet"] and functions["greet"].parameter_names == ("name",)
    assert toy.call("t", "greet", ["lisp"]) == "HI LISP!"


def test_the_guard_checks_what_the_compiler_produced(toy: IsolatedRuntime) -> None:
    with pytest.raises(AccessDeniedError) as info:
        toy.load("t", "fn bad():\n    return ().__class__\n", policy=SecurityPolicy.sandboxed())
    assert info.value.line == 2 and info.value.language == "toy"


def test_compile_errors_come_back_with_lines(toy: IsolatedRuntime) -> None:
    with pytest.raises(CompileError) as info:
        toy.load("t", "x = 1\nfn broken(:\n", policy=SecurityPolicy.sandboxed())
    assert info.value.line == 2


def test_api_names_of_the_language() -> None:
    bridge = ScriptBridge("toy")
    bridge.dom = Document()
    rt = IsolatedRuntime("toy")
    rt.setup_bridge(bridge, {"set_variable_bang": "set_variable", "get_variable": "get_variable"})
    rt.load("t", "import kryon\ndef go():\n    kryon.set_variable_bang('v', 7)\n    return kryon.get_variable('v')\n",
            policy=SecurityPolicy.sandboxed())
    assert rt.call("t", "go", []) == 7 and bridge.dom.get_variable("v") == 7
    rt.close()


def test_limits_for_policy() -> None:
    init = limits_for(SecurityPolicy.sandboxed(memory_limit=1 << 20, time_limit=2.0, allow_network=True))
    assert init["limits"] == {"memory": 1 << 20, "time": 2.0, "value_size": SecurityPolicy().max_value_size}
    assert init["grants"] == {"file_system": False, "network": True, "processes": False, "imports": False}


def test_protocol_values() -> None:
    def export(obj):
        raise protocol.ValueRefused("no")

    assert protocol.encode_value({"a": (1, 2), 3: b"x"}, export) == {"a": [1, 2], "3": {"\x00": "b", "v": "eA=="}}
    assert protocol.encode_value({"\x00": 1}, export) == {"\x00": "d", "v": [["\x00", 1]]}
    with pytest.raises(protocol.ValueRefused):
        protocol.encode_value({None: 1}, export)
    with pytest.raises(protocol.ValueRefused):
        protocol.encode_value(object(), export)
    with pytest.raises(protocol.ValueRefused) as info:
        protocol.encode_value(["x" * 11], export, max_size=10)
    assert info.value.kind == "size"
    for bad in (b"[1]", b"{", b"\xff", b'"text"'):
        with pytest.raises(protocol.ProtocolError):
            protocol.loads(bad)


def test_worker_program_is_standard_library_only() -> None:
    """The worker runs as ``python -I -S``: the files it loads import only the
    standard library (the confinement libraries are imported by name at run
    time, from where the host says; ``if TYPE_CHECKING`` imports are for mypy)."""
    import ast
    from pathlib import Path

    import kryon_core.isolation as iso

    def imports(tree: ast.AST):
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from (n for child in node.orelse for n in imports(ast.Module(body=[child], type_ignores=[])))
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node
            yield from imports(node)

    for name in ("worker.py", "protocol.py", "guard.py", "confine.py", "scriptenv.py"):
        tree = ast.parse((Path(iso.__file__).parent / name).read_text())
        for node in imports(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, (name, node.module)
                modules = [node.module or ""]
            else:
                modules = [a.name for a in node.names]
            for module in modules:
                root = module.split(".")[0]
                assert root == "__future__" or root in sys.stdlib_module_names, (name, module)
