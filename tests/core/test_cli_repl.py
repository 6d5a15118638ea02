"""`kryon eval` and `kryon repl`, run as subprocesses.

They are built on `ScriptManager.evaluate`. The tests run them against a tiny
calculator language (two of them, "calc" and "calc2", so switching languages
and calling across them is covered), loaded with `--plugin` the way a plugin
under development is tried before it is installed, and against every real
engine that implements `ScriptEngine.evaluate`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CALC_PLUGIN = textwrap.dedent('''
    """calc: `let x = EXPR`, `fn f(a, b) = EXPR`, or an EXPR (numbers, strings, names,
    + - * /, calls of fns, and call("script.fn", ...) through the kryon bridge), one a line;
    a line starting with a space continues the one before."""
    import ast

    from kryon_core import (CompiledScript, CompileError, EngineCapabilities, EngineSpec, FunctionInfo,
                            GarbageCollectionStats, MemoryUsage, ScriptEngine, ScriptRuntimeError, hookimpl)

    OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}


    class Calc(ScriptEngine):
        language = "calc"
        version = "calc 1"
        capabilities = EngineCapabilities()

        def __init__(self):
            super().__init__()
            self.spaces, self.fns, self.policies = {}, {}, {}

        def compile(self, source, name, *, policy=None):
            return CompiledScript(id=name, language=self.language, source=source)

        def load_script(self, compiled, *, policy=None):
            self.spaces[compiled.id], self.fns[compiled.id] = {}, {}
            self.policies[compiled.id] = policy or self.config.policy
            if compiled.source.strip():
                self.evaluate(compiled.id, compiled.source)
            return compiled.id

        def unload_script(self, script_id):
            self.spaces.pop(script_id, None)
            self.fns.pop(script_id, None)

        def list_functions(self, script_id):
            return {n: FunctionInfo(n, len(p), tuple(p)) for n, (p, _) in self.fns[script_id].items()}

        def evaluate(self, script_id, code):
            value = None
            statements = []  # a line starting with a space continues the one before
            for number, line in enumerate(code.splitlines(), start=1):
                if line[:1].isspace() and statements:
                    statements[-1] = (statements[-1][0], statements[-1][1] + " " + line.strip())
                else:
                    statements.append((number, line))
            for number, line in statements:
                line = line.strip()
                if line.startswith("let "):
                    name, _, expr = line[4:].partition("=")
                    self.spaces[script_id][name.strip()] = self._eval(script_id, expr.strip(), number, {})
                    value = None
                elif line.startswith("fn "):
                    head, _, expr = line[3:].partition("=")
                    name, _, params = head.strip().partition("(")
                    params = [p.strip() for p in params.rstrip(")").split(",") if p.strip()]
                    self._parse(script_id, expr.strip(), number)
                    self.fns[script_id][name.strip()] = (params, expr.strip())
                    value = None
                elif line:
                    value = self._eval(script_id, line, number, {})
            return value

        def call_function(self, function, args, *, script):
            params, expr = self.fns[script][function]
            return self._eval(script, expr, 1, dict(zip(params, args)))

        def _parse(self, script, text, line):
            try:
                return ast.parse(text, mode="eval").body
            except SyntaxError as exc:
                raise CompileError(f"syntax error: {exc.msg}", language=self.language, script=script, line=line,
                                   column=exc.offset) from None

        def _eval(self, script, text, line, local):
            def walk(node):
                if isinstance(node, ast.Constant):
                    return node.value
                if isinstance(node, ast.Name):
                    for space in (local, self.spaces[script]):
                        if node.id in space:
                            return space[node.id]
                    raise ScriptRuntimeError(f"unknown name {node.id}", language=self.language, script=script,
                                             line=line, column=node.col_offset + 1)
                if isinstance(node, ast.BinOp) and type(node.op) in OPS:
                    return OPS[type(node.op)](walk(node.left), walk(node.right))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    args = [walk(a) for a in node.args]
                    if node.func.id == "call":
                        view = self.bridge.for_script(script, self.policies[script])
                        return view.call(*args)
                    return self.call_function(node.func.id, args, script=script)
                raise ScriptRuntimeError("unsupported", language=self.language, script=script, line=line)
            return walk(self._parse(script, text, line))

        def set_global(self, name, value):
            pass

        def get_global(self, name):
            return None

        def collect_garbage(self):
            return GarbageCollectionStats(0, 0)

        def get_memory_usage(self):
            return MemoryUsage(0)


    class Calc2(Calc):
        language = "calc2"


    @hookimpl
    def kryon_register_engines():
        return [EngineSpec("calc", Calc, (".calc",)), EngineSpec("calc2", Calc2, (".calc2",))]
''')


@pytest.fixture
def kryon(tmp_path):
    (tmp_path / "calc_plugin.py").write_text(CALC_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "KRYON_PLUGINS": "calc_plugin", "KRYON_HISTORY": str(tmp_path / "history")}

    def run(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "kryon_core", *args], capture_output=True, text=True,
                              input=stdin, env=env, timeout=120)

    return run


def test_eval_prints_the_value_as_json(kryon):
    ok = kryon("eval", "calc", "1 + 2 * 3")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "7\n", "")
    text = kryon("eval", "calc", "'a' + 'b'")
    assert text.stdout == '"ab"\n'
    piped = kryon("eval", "calc", "-", stdin="let x = 4\nx * x\n")
    assert piped.stdout == "16\n"
    nan = kryon("eval", "calc", "1e308 * 10")
    assert (nan.stdout, nan.stderr) == ("null\n", "note: result is Infinity, printed as null (JSON has no Infinity)\n")


def test_eval_errors(kryon):
    bad = kryon("eval", "calc", "-", stdin="let x = 1\nx + )\n")
    assert (bad.returncode, bad.stderr) == (65, "<eval>:2:5: error: syntax error: unmatched ')' [calc]\n")
    runtime = kryon("eval", "calc", "1 + nope")
    assert (runtime.returncode, runtime.stderr) == (70, "<eval>:1:5: error: unknown name nope [calc]\n")
    as_json = kryon("eval", "calc", "nope", "--json")
    assert json.loads(as_json.stderr)["file"] == "<eval>" and as_json.returncode == 70
    missing = kryon("eval", "cobol", "1")
    assert missing.returncode == 69
    assert missing.stderr.startswith("error: no engine for language 'cobol' is installed (installed: ")
    usage = kryon("eval", "calc")
    assert usage.returncode == 64 and "the following arguments are required: code" in usage.stderr


def test_repl_keeps_state_switches_language_and_calls_across(kryon):
    session = "\n".join([
        "let x = 20",
        "fn double(n) = n * 2",
        "double(x) + 2",
        "nope",                      # an error, and the loop goes on
        ":lang calc2",
        "call('calc-console.double', 5)",
        "call('double', 1)",         # a bare name resolves while unique
        ":lang cobol",
        ":lang calc",
        "x",
        ":frobnicate",
        ":quit",
        "x",                         # never read
    ]) + "\n"
    result = kryon("repl", "calc", stdin=session)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["42", "10", "2", "20"]
    assert result.stderr.splitlines() == [
        "<repl>:1:1: error: unknown name nope [calc]",
        "error: no engine for language 'cobol' is installed (installed: calc, calc2"
        + result.stderr.split("calc, calc2", 1)[1].split("\n", 1)[0],
        "error: unknown command ':frobnicate' (:help lists them)",
    ]


def test_repl_continues_unfinished_input(kryon):
    result = kryon("repl", "calc", stdin="(1 +\n 2)\nlet y = 3 \\\n + 4\ny\n")
    assert result.stdout.splitlines() == ["3", "7"], result.stderr


def test_repl_needs_an_engine_that_evaluates(kryon):
    result = kryon("repl", "cobol")
    assert result.returncode == 69 and result.stderr.startswith("error: no engine for language 'cobol'")


def test_needs_more_per_language():
    from kryon_core.cli.repl import needs_more

    assert needs_more("lua", "function f(x)") and not needs_more("lua", "function f(x) return x end")
    assert needs_more("lua", "if x then") and not needs_more("lua", "if x then y = 1 elseif z then y = 2 end")
    assert not needs_more("lua", 'print("function (")')
    assert needs_more("javascript", "function f() {") and not needs_more("javascript", "f({a: 1})")
    assert needs_more("python", "def f():") and needs_more("python", "def f():\n    return 1")
    assert not needs_more("python", "def f():\n    return 1\n") and not needs_more("python", "x = 1")
    assert needs_more("lisp", "(defn f [x]") and not needs_more("lisp", '(print "(")')


REAL = {"lua": ("local_twice = nil\nfunction twice(x) return x * 2 end", "twice(21)"),
        "javascript": ("function twice(x) { return x * 2 }", "twice(21)"),
        "python": ("def twice(x):\n    return x * 2\n", "twice(21)"),
        "lisp": ("(defn twice [x] (* x 2))", "(twice 21)")}


def _evaluates(language: str) -> bool:
    from kryon_core import ScriptEngine, ScriptManager

    manager = ScriptManager(cache=False)
    try:
        return language in manager.languages and type(manager.engine(language)).evaluate is not ScriptEngine.evaluate
    finally:
        manager.close()


@pytest.mark.parametrize("language", sorted(REAL))
def test_real_engines(language, kryon):
    if not _evaluates(language):
        pytest.skip(f"the {language} engine does not implement ScriptEngine.evaluate yet")
    define, use = REAL[language]
    assert kryon("eval", language, use.replace("twice(21)", "21 * 2").replace("(twice 21)", "(* 21 2)")).stdout == "42\n"
    result = kryon("repl", language, stdin=define + "\n\n" + use + "\n")
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "42", result.stdout + result.stderr


def test_readme_transcript(kryon):
    """The README's REPL example: a Lua function called from JavaScript in one session."""
    if not (_evaluates("lua") and _evaluates("javascript")):
        pytest.skip("the lua and javascript engines do not both implement ScriptEngine.evaluate yet")
    session = 'function twice(x) return x * 2 end\n:lang javascript\nkryon.call("twice", 21)\n'
    result = kryon("repl", "lua", stdin=session)
    assert (result.returncode, result.stdout) == (0, "42\n"), result.stderr
