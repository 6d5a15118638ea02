"""The worker's files: ``kryon_core/isolation/worker.py`` and the siblings it
loads by path (``kryon_core/debug/pyframes.py`` among them). Every ``worker_*.py`` is loaded, each after the siblings it
looks up, each says its job in a docstring, and each imports only the
standard library at run time (the worker runs as ``python -I -S``, and as a
fork server's child)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kryon_core.isolation as iso

ISOLATION = Path(iso.__file__).parent
PREFIX = "kryon_isolation_"
#: the start of a program that loads worker.py (its path: argv[1]) as a fork server does, as ``worker``
LOAD_WORKER = (
    "import importlib.util, sys\n"
    f"spec = importlib.util.spec_from_file_location('{PREFIX}worker', sys.argv[1])\n"
    "worker = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = worker\n"
    "spec.loader.exec_module(worker)\n"
)


def _tree(name: str) -> ast.Module:
    """A sibling's source: in the worker's directory, or in ``kryon_core/debug``
    (what the worker's debugger shares with the in-process one)."""
    path = ISOLATION / f"{name}.py"
    if not path.exists():
        path = ISOLATION.parent / "debug" / f"{name}.py"
    return ast.parse(path.read_text())


def load_order() -> list[str]:
    """The siblings worker.py loads, in the order it loads them."""
    return [
        node.args[0].value
        for node in ast.walk(_tree("worker"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_load_sibling"
        and node.args and isinstance(node.args[0], ast.Constant)
    ]


def looked_up(name: str) -> set[str]:
    """The siblings ``name``.py takes from ``sys.modules`` (``kryon_isolation_X``)."""
    return {
        node.slice.value[len(PREFIX):]
        for node in ast.walk(_tree(name))
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str) and node.slice.value.startswith(PREFIX)
        and ast.unparse(node.value) == "sys.modules"
    }


def typed_siblings(name: str) -> set[str]:
    """The siblings ``name``.py imports as modules for mypy
    (``from . import X`` inside ``if TYPE_CHECKING:``)."""
    found: set[str] = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                if isinstance(child, ast.ImportFrom) and child.level == 1 and child.module is None:
                    found |= {alias.name for alias in child.names}
    return found


def runtime_imports(tree: ast.AST) -> list[str]:
    """Modules imported outside ``if TYPE_CHECKING:`` bodies (those are for mypy)."""
    found: list[str] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                found += runtime_imports(ast.Module(body=[child], type_ignores=[]))
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        else:
            found += runtime_imports(node)
    return found


def test_every_worker_module_is_loaded_by_the_worker() -> None:
    order = load_order()
    assert len(order) == len(set(order))
    assert {p.stem for p in ISOLATION.glob("worker_*.py")} <= set(order)


def test_each_sibling_finds_the_siblings_it_uses_already_loaded() -> None:
    order = load_order()
    for i, name in enumerate(order):
        for used in looked_up(name):
            assert used in order[:i], f"{name}.py uses {used}.py, which worker.py loads after it"


def test_what_each_file_names_for_mypy_is_what_it_loads_or_looks_up() -> None:
    """worker.py loads exactly the siblings it imports for mypy, and each
    sibling looks up at run time the siblings it imports for mypy: a sibling
    that starts to use another (as worker_channel uses dombatch) cannot skip
    the order check above."""
    assert typed_siblings("worker") | {"pyframes"} == set(load_order())
    for name in load_order():
        assert typed_siblings(name) <= looked_up(name), f"{name}.py imports siblings for mypy it does not look up"


def test_the_dom_batch_and_relative_imports_load_before_their_users() -> None:
    order = load_order()
    assert order.index("dombatch") < order.index("worker_channel")
    assert "dombatch" in looked_up("worker_channel")
    assert order.index("relative_imports") < order.index("worker_calls")
    assert "relative_imports" in looked_up("worker_calls")


def test_worker_modules_say_their_job_and_import_only_the_standard_library() -> None:
    for name in ["worker", *load_order()]:
        tree = _tree(name)
        assert (ast.get_docstring(tree) or "").strip(), f"{name}.py has no docstring"
        for module in runtime_imports(tree):
            root = module.split(".")[0]
            assert root == "__future__" or root in sys.stdlib_module_names, (name, module)


def test_the_worker_loads_each_sibling_once_under_python_isolated() -> None:
    """What a fork server does (``zygote.py``): worker.py loaded by path in
    ``python -I -S``; each sibling is loaded once, and the channel script
    code finds on the worker module is the one its siblings use."""
    program = (
        LOAD_WORKER +
        f"channel = sys.modules['{PREFIX}worker_channel']\n"
        "assert worker.send is channel.send and worker.host_request is channel.host_request\n"
        "assert channel.D is worker.D and worker.S is channel.S\n"
        f"assert worker.dombatch is sys.modules['{PREFIX}dombatch'] and channel.W.pending == []\n"
        f"print(' '.join(sorted(n[len('{PREFIX}'):] for n in sys.modules if n.startswith('{PREFIX}'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", program, str(ISOLATION / "worker.py")],
        capture_output=True, text=True, timeout=60, env={},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == sorted(["worker", *load_order()])


def test_a_plain_call_runs_one_frame_below_the_request_loop() -> None:
    """The round trip's worker side is mostly Python calls: a call with no
    debugger and no breakpoint runs the script's function from
    ``worker_calls.call_plain``, called by ``serve`` (with or without a time
    limit); with a breakpoint set it takes the traced path."""
    program = (
        LOAD_WORKER +
        "def callers(n):\n"
        "    frame, names = sys._getframe(1), []\n"
        "    while frame is not None:\n"
        "        names.append(frame.f_code.co_name)\n"
        "        frame = frame.f_back\n"
        "    return [n, *names[:-1]]\n"
        "sent = []\n"
        "worker.send = sent.append\n"
        "worker.S.scripts['s'] = {'callers': callers}\n"
        "for limit, bps in ((None, {}), (5.0, {}), (None, {'s': {'999': 1}})):\n"
        "    worker.S.time_limit, worker.S.breakpoints = limit, bps\n"
        "    worker.serve({'t': 'call', 'i': 1, 'script': 's', 'fn': 'callers', 'a': [7]})\n"
        "    print(' '.join(map(str, sent.pop()['v'])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", program, str(ISOLATION / "worker.py")],
        capture_output=True, text=True, timeout=60, env={},
    )
    assert out.returncode == 0, out.stderr
    plain, limited, traced = out.stdout.splitlines()
    assert plain == limited == "7 call_plain serve"
    assert traced.startswith("7 _complete ") and traced.endswith(" serve")
