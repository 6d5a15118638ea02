"""Sandboxed Lisp: each script in a kryon_core.isolation worker, a corpus of
known escapes each refused with a clear AccessDeniedError, limits enforced,
the host and the other scripts untouched. (Workers take a moment to start:
one manager serves the module.)"""

from __future__ import annotations

import asyncio

import escape_corpus as corpus  # tests/python/escape_corpus.py (conftest.py)
import pytest
from worker_support import Evaluations, evaluate_in_the_worker  # tests/python (conftest.py)

from kryon_core import (
    AccessDeniedError,
    CompileError,
    Document,
    ScriptManager,
    ScriptRuntimeError,
    ScriptTimeoutError,
    SecurityPolicy,
)

pytest.importorskip("kryon_core.isolation")


@pytest.fixture(scope="module")
def sandboxed():
    m = ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=2.0))
    m.load_script_from_source(
        "bystander",
        "lisp",
        """
(setv n 41)
(defn answer [] (+ n 1))
(defn greet [name] (+ "hello " name))
(defn make-adder [k] (fn [x] (+ x k)))
(defn calls-os []
  (import os)
  (os.getcwd))
(defn :async double [x] (* x 2))
(defn :async fetch [x]
  (await (double x)))
(defn spin []
  (setv i 0)
  (while True
    (+= i 1)))
""",
    )
    yield m
    m.close()


def _intact(m: ScriptManager) -> None:
    assert m.call_function("bystander.answer") == 42


def test_a_bare_manager_runs_lisp_sandboxed():
    with ScriptManager(cache=False) as m:
        assert m.policy.sandboxed
        m.load_script_from_source("plain", "lisp", "(defn add-numbers [a b] (+ a b))")
        assert m.engine("lisp")._isolated  # it runs in a worker, not in this process
        assert m.call_function("add-numbers", [2, 3]) == 5


def test_sandboxed_async(sandboxed):
    assert sandboxed.functions()["bystander.fetch"].is_async
    assert asyncio.run(sandboxed.call_function_async("bystander.fetch", [21])) == 42


def test_sandboxed_functions_keep_lisp_names(sandboxed):
    fns = sandboxed.functions()
    assert fns["bystander.make-adder"].parameter_names == ("k",)
    assert fns["bystander.calls-os"].line == 6
    adder = sandboxed.call_function("bystander.make-adder", [10])
    assert adder(5) == 15 and adder.language == "lisp" and adder.script == "bystander"
    assert sandboxed.function("bystander.greet")("kryon") == "hello kryon"


ESCAPES = {
    "import-os": "(import os)\n(os.getcwd)",
    "subprocess": "(import subprocess)",
    "open": '(setv f (open "/etc/passwd"))',
    "dunder-chain": "(. (tuple) __class__ __base__)",
    "subclasses": "(.__subclasses__ object)",
    "getattr-dunder": '(getattr (tuple) "__class__")',
    "generator-frame": "(defn g [] (yield 1))\n(. (g) gi_frame)",
    "inline-python": "(py \"__import__('os')\")",
    "eval": '(eval "1")',
    "globals": "(globals)",
    "hy-eval": "(hy.eval '(import os))",
    "hy-importer": "(hy.I.os.getcwd)",
    "hy-compiler": "(import hy.compiler)",
    # macros run inside the worker while it compiles the script: what they do is refused there
    "defmacro": '(defmacro evil []\n  (import os)\n  (os.system "id"))\n(evil)',
    "defmacro-open": '(defmacro evil []\n  (.read (open "/etc/passwd")))\n(evil)',
    "defmacro-dunder": "(defmacro evil []\n  (. (tuple) __class__ __base__))\n(evil)",
    "eval-when-compile": "(eval-when-compile (import os))",
    "do-mac": '(do-mac (do (import subprocess) 1))',
    "reader-macro": '(defreader evil (import os) (os.getcwd))\n(setv x #evil)',
    "require": "(require hyrule [->])",
    "one-shot-require": "(hy.R.hyrule.-> 1)",
    "nested-defmacro": "(defn f []\n  (when True\n    (defmacro m [] (import os) 1)\n    (m)))",
    "macro-hy-eval": "(defmacro m [] (hy.eval '(import os)))\n(m)",
    "macro-hy-importer": "(defmacro m [] (hy.I.os.getcwd))\n(m)",
    "before-a-reader-error": '(eval-when-compile (import os) (os.getcwd))\n(setv broken "never closed',
    # a macro may receive the compiler: changing its check or its module must not turn the guard off
    "compiler-check-off": "(defmacro m [_hy_compiler]\n  (setv _hy_compiler.check None)\n"
                          "  (_hy_compiler.eval '(. (tuple) __class__)))\n(m)",
    "compiler-class-check-off": "(defmacro m [_hy_compiler] (setv (. (type _hy_compiler) check) None) 1)\n(m)\n"
                                "(eval-when-compile (. (tuple) __class__))",
    "compiler-module-swap": "(defmacro m [_hy_compiler]\n  (setv _hy_compiler.module (hy.I \"math\"))\n"
                            "  (_hy_compiler.eval '(.read (open \"/etc/passwd\"))))\n(m)",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_known_escapes_are_refused(sandboxed, name):
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.load_script_from_source(f"escape-{name}", "lisp", ESCAPES[name])
    err = info.value
    assert err.language == "lisp" and err.script == f"escape-{name}"
    assert f"escape-{name}" not in sandboxed.scripts
    _intact(sandboxed)


def test_a_macro_refused_at_compile_time_names_the_line(sandboxed):
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.load_script_from_source(
            "m", "lisp", '(defn f [] 1)\n(defmacro peek []\n  (.read (open "/etc/hostname")))\n(defn g []\n  (peek))'
        )
    assert info.value.line == 5 and "open" in info.value.message
    with pytest.raises(AccessDeniedError) as guard:
        sandboxed.load_script_from_source("m", "lisp", "(defmacro peek []\n  (. (tuple) __class__))\n(peek)")
    # a refused attribute read is refused when it runs: the expansion on line 3, as open above
    assert guard.value.line == 3 and "__class__" in guard.value.message
    assert "m" not in sandboxed.scripts
    _intact(sandboxed)


MACRO_SCRIPT = """\
(defmacro twice [x] `(* 2 ~x))
(defmacro unless* [test #* body] `(when (not ~test) ~@body))
(defreader upper (.upper (.parse-one-form &reader)))
(do-mac `(setv generated ~(+ 40 2)))
(eval-when-compile (setv compile-time-table {"a" 1 "b" 2}))
(defmacro table-size [] (len compile-time-table))
(defn double [x] (twice x))
(defn guarded [x] (unless* (< x 0) x))
(defn shout [] #upper "hi")
(defn table [] (table-size))
(defn has-macro [] (callable (get-macro twice)))
(defn checked [x]
  (assert (do (setv y (* x 2)) (> y 0)) "positive")
  y)
"""


def test_a_sandboxed_lisp_is_a_whole_lisp(sandboxed):
    """Macros, reader macros, do-mac, eval-when-compile, get-macro and Hy's
    `assert` (which emits __debug__) compile and run inside the worker."""
    m = sandboxed
    m.load_script_from_source("macros", "lisp", MACRO_SCRIPT)
    assert m.engine("lisp").is_sandboxed("macros")
    assert m.call_function("macros.double", [21]) == 42
    assert m.call_function("macros.guarded", [5]) == 5 and m.call_function("macros.guarded", [-1]) is None
    assert m.call_function("macros.shout") == "HI"
    assert m.call_function("macros.table") == 2
    assert m.call_function("macros.has-macro") is True
    assert m.call_function("macros.checked", [3]) == 6
    with pytest.raises(ScriptRuntimeError, match="positive"):
        m.call_function("macros.checked", [-3])
    assert m.evaluate("lisp", "(twice generated)", script="macros") == 84, "evaluate sees the script's macros"
    m.unload_script("macros")
    _intact(m)


def test_macros_run_under_the_time_limit(sandboxed):
    with pytest.raises(ScriptTimeoutError) as info:
        sandboxed.load_script_from_source("slow", "lisp", "(defmacro forever [] (while True 1))\n(forever)")
    assert info.value.language == "lisp" and info.value.script == "slow"
    _intact(sandboxed)


def test_require_of_a_granted_macro_module(tmp_path, monkeypatch):
    (tmp_path / "kryon_test_macs.hy").write_text('(defmacro triple [x] `(* 3 ~x))\n(defreader hello "hello")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    source = "(require kryon_test_macs [triple])\n(require kryon_test_macs :readers [hello])\n" \
             "(defn f [x] (triple x))\n(defn g [] #hello)"
    policy = SecurityPolicy.sandboxed(time_limit=5, allowed_modules=("kryon_test_macs",))
    with ScriptManager(cache=False, policy=policy) as m:
        m.load_script_from_source("r", "lisp", source)
        assert m.call_function("r.f", [4]) == 12 and m.call_function("r.g") == "hello"
        assert m.evaluate("lisp", "(triple 5)", script="r") == 15
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:  # not granted
        with pytest.raises(AccessDeniedError, match="importing 'kryon_test_macs' is not allowed") as info:
            m.load_script_from_source("r", "lisp", source)
        assert info.value.line == 1


def test_import_asyncio_in_async_code(sandboxed):
    sandboxed.load_script_from_source(
        "aio", "lisp", "(import asyncio)\n(defn :async nap [x] (await (asyncio.sleep 0)) (* x 2))"
    )
    assert asyncio.run(sandboxed.call_function_async("aio.nap", [21])) == 42
    sandboxed.unload_script("aio")


def test_import_os_at_call_time(sandboxed):
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.call_function("bystander.calls-os")
    assert "os" in info.value.message and info.value.line == 7
    _intact(sandboxed)


def test_infinite_loop_hits_the_time_limit(sandboxed):
    with pytest.raises(ScriptTimeoutError) as info:
        sandboxed.call_function("bystander.spin")
    assert info.value.language == "lisp" and info.value.script == "bystander"
    _intact(sandboxed)


def test_errors_in_the_worker_are_lisp_errors(sandboxed):
    sandboxed.load_script_from_source("rt", "lisp", "(defn set-it! [x]\n  (/ x 0))")
    try:
        with pytest.raises(ScriptRuntimeError) as info:
            sandboxed.call_function("rt.set-it!", [1])
        err = info.value
        assert "ZeroDivisionError" in err.message and (err.script, err.line, err.column) == ("rt", 2, 3)
        assert err.stack[0].function == "set-it!"
    finally:
        sandboxed.unload_script("rt")
    with pytest.raises(CompileError) as info:
        sandboxed.load_script_from_source("bad", "lisp", "(defn f []\n  (+ 1 2)))")
    assert info.value.line == 2


def test_top_level_errors_carry_the_lisp_line_and_stack(sandboxed):
    with pytest.raises(ScriptRuntimeError) as info:
        sandboxed.load_script_from_source("top", "lisp", '(setv x 1)\n(setv y 2)\n(raise (ValueError "top"))\n')
    err = info.value
    assert (err.language, err.script, err.line, err.column) == ("lisp", "top", 3, 1) and "ValueError: top" in err.message
    assert [(f.function, f.script, f.line, f.column) for f in err.stack] == [("<top level>", "top", 3, 1)]
    with pytest.raises(ScriptRuntimeError) as info:
        sandboxed.load_script_from_source("inner", "lisp", "(defn f []\n  (/ 1 0))\n(f)\n")
    assert (info.value.line, info.value.column) == (2, 3)
    assert [(f.function, f.line, f.column) for f in info.value.stack] == [("f", 2, 3), ("<top level>", 3, 1)]
    with pytest.raises(AccessDeniedError) as info:
        sandboxed.load_script_from_source("imp", "lisp", "(setv x 1)\n(import os)\n")
    assert (info.value.script, info.value.line) == ("imp", 2)
    with pytest.raises(CompileError) as info:
        sandboxed.load_script_from_source("syn", "lisp", "(setv x 1)\n(setv y (+ 1 2)\n")
    assert (info.value.line, info.value.column) == (2, 1)
    assert set(sandboxed.scripts) == {"bystander"}
    _intact(sandboxed)


def test_top_level_time_limit_and_failed_reload_name_the_line():
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=0.3)) as m:
        with pytest.raises(ScriptTimeoutError) as info:
            m.load_script_from_source("spin", "lisp", "(setv i 0)\n(while True\n  (+= i 1))\n")
        assert info.value.script == "spin" and info.value.line in (2, 3)
        m.load_script_from_source("c", "lisp", "(setv n 0)\n(defn inc [] (global n) (+= n 1) n)\n")
        assert m.call_function("c.inc") == 1
        with pytest.raises(ScriptRuntimeError) as info:
            m.hot_reload_script("c", '(setv n 10)\n(raise (RuntimeError "no"))\n')
        assert (info.value.script, info.value.line) == ("c", 2)
        assert m.call_function("c.inc") == 2, "the old version keeps running"


def test_sandboxed_dom_and_globals():
    with ScriptManager(cache=False) as m:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("label", {"id": "title", "text": ""}))
        m.set_global("lisp", "user-name", "ada")
        m.load_script_from_source(
            "ui",
            "lisp",
            '(set-property! (get-element-by-id "title") "text" (+ "hi " user-name))\n'
            '(add-event-listener! (get-element-by-id "title") "click"\n'
            '  (fn [e] (set-variable! "clicked" (get e "targetId"))))',
        )
        assert doc.get_property("title", "text") == "hi ada"
        doc.click("title")
        assert doc.get_variable("clicked") == "title"
        m.unload_script("ui")
        assert doc.callback_counts()["listeners"] == 0


def test_code_run_while_compiling_never_runs_in_the_host(tmp_path):
    """Every form that evaluates code while compiling (pragma's values among
    them) is compiled in the worker only: the host never runs it, neither to
    fill the cache nor to list functions."""
    marker = tmp_path / "ran-in-the-host"
    forms = [
        f'(pragma :hy (do (import pathlib) (.touch (pathlib.Path "{marker}")) "1.0"))',
        f'(pragma :warn-on-core-shadow (do (import pathlib) (.touch (pathlib.Path "{marker}")) True))',
        f'(eval-when-compile (import pathlib) (.touch (pathlib.Path "{marker}")))',
        f'(defmacro m [] (import pathlib) (.touch (pathlib.Path "{marker}")) 1)\n(m)',
        # Hy reads symbols NFKC-normalised: full-width letters spell the same form
        f'(\uff50\uff52\uff41\uff47\uff4d\uff41 :hy (do (import pathlib) (.touch (pathlib.Path "{marker}")) "1.0"))',
        f'(do_mac (do (import pathlib) (.touch (pathlib.Path "{marker}")) 1))',
    ]
    with ScriptManager(cache_dir=False) as m:
        for i, source in enumerate(forms):
            with pytest.raises(AccessDeniedError):
                m.load_script_from_source(f"p{i}", "lisp", source)
            assert not marker.exists(), source


def test_a_cached_trusted_compile_never_runs_macros_with_the_host_rights():
    """A trusted load runs its macros in the host; a sandboxed load of the
    same source (a cache hit) runs them in its worker, under its policy."""
    import os

    source = "(defmacro where [] (import os) (os.getpid))\n(defn pid [] (where))"
    with ScriptManager(cache_dir=False) as m:  # one in-memory cache for both loads
        m.load_script_from_source("trusted", "lisp", source, policy=SecurityPolicy.trusted())
        assert m.call_function("trusted.pid") == os.getpid()
        with pytest.raises(AccessDeniedError) as info:
            m.load_script_from_source("untrusted", "lisp", source)  # same source: a cache hit
        assert "os" in info.value.message and info.value.line == 2
        m.load_script_from_source("shout", "lisp", "(defmacro shout [x] `(.upper ~x))\n(defn hello [] (shout \"hi\"))")
        assert m.call_function("shout.hello") == "HI"


# -- the kernel layer: arbitrary code in a Lisp worker --------------------------------------------
LISP_CORPUS = r'''
(defn make-room []
  (try
    (import os)
    (for [fd [0 1]]
      (try (os.close fd) (except [OSError] None)))
    (except [Exception] None)))

(defn read-secret [] (make-room)
  (with [f (open (get T "secret"))] (.read f)))
(defn read-secret-os [] (make-room)
  (import os)
  (setv fd (os.open (get T "secret") os.O_RDONLY))
  (try (os.read fd 100) (finally (os.close fd))))
(defn read-symlink [] (make-room)
  (with [f (open (get T "link"))] (.read f)))
(defn read-shadow [] (make-room)
  (with [f (open "/etc/shadow")] (.read f)))
(defn read-passwd [] (make-room)
  (with [f (open "/etc/passwd")] (.read f)))
(defn host-environ [] (make-room)
  (with [f (open (% "/proc/%d/environ" (get T "host_pid")) "rb")] (.read f)))
(defn own-environ [] (make-room)
  (import os)
  (dict os.environ))
(defn self-mem [] (make-room)
  (import os)
  (os.open "/proc/self/mem" os.O_RDWR)
  "ESCAPED")
(defn write-file [] (make-room)
  (with [f (open (+ (get T "dir") "/lisp-written") "w")] (.write f "x")))
(defn write-shm [] (make-room)
  (with [f (open (+ "/dev/shm/kryon-escape-" (get T "token")) "w")] (.write f "x")))
(defn chmod-secret [] (make-room)
  (import os)
  (os.chmod (get T "secret") 0o666))
(defn tcp-connect [] (make-room)
  (import socket)
  (setv s (socket.socket))
  (.settimeout s 1)
  (.connect s #("127.0.0.1" (get T "port")))
  "ESCAPED")
(defn unix-connect [] (make-room)
  (import socket)
  (setv s (socket.socket socket.AF_UNIX))
  (.settimeout s 1)
  (.connect s (get T "abstract"))
  "ESCAPED")
(defn fork [] (make-room)
  (import os)
  (setv pid (os.fork))
  (when (= pid 0) ((getattr os "_exit") 0))
  (% "ESCAPED %d" pid))
(defn spawn [] (make-room)
  (import os)
  (% "ESCAPED %d" (os.posix_spawn "/bin/sh" ["sh" "-c" (+ "touch " (get T "dir") "/lisp-spawned")] {})))
(defn kill-decoys [] (make-room)
  (import os)
  (for [pid (get T "decoys")] (os.kill pid 9))
  "ESCAPED")
(defn kill-host [] (make-room)
  (import os signal)
  (os.kill (get T "host_pid") signal.SIGCONT)
  "ESCAPED")
(defn kill-bystander [] (make-room)
  (import os)
  (os.kill (get T "bystander_pid") 9)
  "ESCAPED")
(defn setuid-root [] (make-room)
  (import os)
  (os.setuid 0)
  "ESCAPED")
(defn ctypes-shadow [] (make-room)
  (import ctypes)
  (setv libc (ctypes.CDLL None))
  (setv fd (libc.open b"/etc/shadow" 0))
  (setv buf (ctypes.create_string_buffer 200))
  (setv n (libc.read fd buf 200))
  (cut buf.raw 0 (max n 0)))
(defn ctypes-ptrace [] (make-room)
  (import ctypes)
  (setv r ((. (ctypes.CDLL None) ptrace) 16 (get T "host_pid") 0 0))
  (if (= r 0) "ESCAPED" r))
(defn python-inside-lisp []
  (setv ns {"T" T})
  (exec (get T "python") ns)
  (dfor [fn name] (.items (get ns "ATTACK_NAMES"))
        :if (!= name "x32 system call ABI")
        name (try (repr ((get ns fn))) (except [e Exception] (str e)))))
'''

LISP_ATTACKS = [
    "read-secret", "read-secret-os", "read-symlink", "read-shadow", "read-passwd", "host-environ", "own-environ",
    "self-mem", "write-file", "write-shm", "chmod-secret", "tcp-connect", "unix-connect", "fork", "spawn",
    "kill-decoys", "kill-host", "kill-bystander", "setuid-root", "ctypes-shadow", "ctypes-ptrace",
    "python-inside-lisp",
]


@pytest.fixture
def traps():
    t = corpus.Traps()
    yield t
    t.close()


@pytest.mark.parametrize("layers", [False, True], ids=["python layers off", "python layers on"])
def test_lisp_escape_corpus(layers, traps):
    from kryon_core import ScriptError
    from kryon_core.isolation.testing import python_layers_off

    policy = SecurityPolicy.sandboxed(time_limit=5.0, allowed_modules=corpus.GRANTED_MODULES)
    with ScriptManager(cache=False, policy=policy) as m:
        m.load_script_from_source("bystander", "lisp", "(setv n 0)\n(defn bump [] (global n) (+= n 1) n)\n")
        runtime = m.engine("lisp").runtime
        targets = traps.targets(runtime.worker_info("bystander")["pid"])
        m.set_global("lisp", "T", {**targets, "python": corpus.python_corpus_source()})
        if layers:
            m.load_script_from_source("attacks", "lisp", LISP_CORPUS)
        else:
            with python_layers_off():
                m.load_script_from_source("attacks", "lisp", LISP_CORPUS)
        assert runtime.worker_info("attacks")["hardening"]["guard"] is layers
        escaped = {}
        for name in LISP_ATTACKS:
            try:
                result = corpus.result_text(m.call_function(f"attacks.{name}"))
            except ScriptError as exc:
                result = f"{type(exc).__name__}: {exc.message}"
                if layers:
                    assert isinstance(exc, AccessDeniedError), (name, exc)
            found = traps.escapes(result)
            pid = runtime.worker_info("attacks")["pid"]
            if pid and corpus.descendants(pid):
                found.append("the worker has child processes")
            if found:
                escaped[name] = found
        assert not escaped, escaped
        assert m.call_function("bystander.bump") == 1, "the other script's worker and state are untouched"


@pytest.mark.parametrize("body", ["(sum (range (** 10 12)))", "(do (import math) (> (math.factorial (** 10 8)) 0))"],
                         ids=["sum of a huge range", "factorial"])
def test_c_level_loops_stop_and_the_engine_stays_usable(body):
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=0.5)) as m:
        m.load_script_from_source("other", "lisp", "(setv n 0)\n(defn bump [] (global n) (+= n 1) n)\n")
        assert m.call_function("other.bump") == 1
        m.load_script_from_source("spin", "lisp", f"(setv kept [])\n(defn keep [x] (.append kept x) (len kept))\n(defn attack [] {body})\n")
        assert m.call_function("spin.keep", [1]) == 1
        with pytest.raises(ScriptTimeoutError) as info:
            m.call_function("spin.attack")
        assert info.value.language == "lisp" and info.value.script == "spin"
        restarted = m.engine("lisp").runtime.worker_info("spin")["restarts"]
        # a hard stop restarts the worker and reruns the top level; an interrupt keeps the state
        assert m.call_function("spin.keep", [2]) == (1 if restarted else 2)
        assert m.call_function("other.bump") == 2, "another script keeps its state"


def test_evaluate_in_a_sandboxed_script(sandboxed):
    """``evaluate`` runs Lisp in the script's worker: its names, its limits."""
    evaluate_in_the_worker(sandboxed, Evaluations(
        language="lisp",
        script="(setv n 40)\n(defn get [] n)",
        plus_two="(+ n 2)",
        redefine="(setv n 1)\n(defn twice [x] (* 2 x))",
        denied="(. (tuple) __class__)",
        raises='(setv y 2)\n(raise (ValueError "no"))',
        broken="(+ 1",
        endless="(while True (setv n 1))",
        n="n",
    ))
    _intact(sandboxed)


def test_callbacks_fired_during_the_top_level(sandboxed):
    """Listeners, watchers and worker functions handed to another script,
    fired while the script's own top level runs, reach the worker being loaded."""
    m = ScriptManager(cache=False)
    try:
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("div", {"id": "box"}))
        m.load_script_from_source("early_helper", "lisp", "(defn apply [f x] (f x))")
        m.load_script_from_source(
            "early",
            "lisp",
            """
(setv seen [])
(defn on-ping [event] (.append seen (get event "type")))
(setv box (get-element-by-id "box"))
(add-event-listener! box "ping" on-ping)
(watch-variable! "mode" (fn [new old name] (.append seen new)))
(emit-custom-event! box "ping" {"n" 1})
(set-variable! "mode" "early")
(.append seen (kryon-call "early_helper.apply" (fn [x] (+ x 1)) 41))
(defn events [] seen)
""",
        )
        assert m.call_function("early.events") == ["ping", "early", 42]
        assert not doc.errors, doc.errors
        doc.emit_custom_event("box", "ping")
        assert m.call_function("early.events") == ["ping", "early", 42, "ping"]
    finally:
        m.close()


def test_a_warm_sandboxed_load_runs_the_cached_code(tmp_path):
    """A warm load of a sandboxed Lisp script compiles nothing in the worker;
    a script whose compiling runs its own code is compiled by its worker,
    never taken from a trusted compile."""
    source = "(setv n 0)\n(defn bump [] (global n) (+= n 1) n)\n(defn fail []\n  (raise (ValueError \"x\")))\n"
    macro = "(defmacro twice [x] `(* 2 ~x))\n(defn double [x] (twice x))\n"
    with ScriptManager(cache_dir=tmp_path, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        m.load_script_from_source("cold", "lisp", source)
        m.load_script_from_source("mac", "lisp", macro, policy=SecurityPolicy.trusted())
    with ScriptManager(cache_dir=tmp_path, policy=SecurityPolicy.sandboxed(time_limit=5)) as m:
        m.load_script_from_source("warm", "lisp", source)
        runtime = m.engine("lisp").runtime
        assert runtime.worker_info("warm")["compiled_from"] == "bytecode"
        assert m.call_function("warm.bump") == 1
        with pytest.raises(ScriptRuntimeError) as info:
            m.call_function("warm.fail")
        assert (info.value.script, info.value.line, info.value.language) == ("warm", 4, "lisp")
        m.load_script_from_source("mac2", "lisp", macro)  # a cache hit, compiled by the trusted load
        assert m.scripts["mac2"].compiled.from_cache
        assert runtime.worker_info("mac2")["compiled_from"] == "source"
        assert m.call_function("mac2.double", [21]) == 42


@pytest.mark.slow
def test_a_4500_line_script_loads_warm_under_the_default_limits(tmp_path):
    """Issue 15's large script: compiled once (cold, by the host), a warm load
    in a fresh manager under the default policy runs the cached code in the
    worker, well inside the default time limit."""
    source = "".join(f"(defn f{i} [a b]\n  (setv s (+ a (* b {i})))\n  (if (> s 10) (- s 1) s))\n" for i in range(1500))
    assert source.count("\n") == 4500
    with ScriptManager(cache_dir=tmp_path, policy=SecurityPolicy.sandboxed(time_limit=120)) as m:
        m.load_script_from_source("big", "lisp", source)
    with ScriptManager(cache_dir=tmp_path) as m:  # the default policy and its limits
        m.load_script_from_source("big", "lisp", source)
        assert m.engine("lisp").runtime.worker_info("big")["compiled_from"] == "bytecode"
        assert m.call_function("big.f1499", [1, 1]) == 1499
