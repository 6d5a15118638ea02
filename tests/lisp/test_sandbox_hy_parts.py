"""The parts of Hy a sandboxed Lisp script may name: ``hy.errors`` (to catch
what compiling raises), ``hy.models`` and ``hy.compat``'s version flags are
importable; any other part of Hy is refused when the code reaching for it
runs, so a file with one such function still loads (Hy's own test files put
an ``(import hy.importer ...)`` inside one test). A ``.hy`` module of a
granted package defines its macros after the worker is sealed, and a
``require`` inside a function binds them as locals there."""

from __future__ import annotations

import sys

import pytest

from kryon_core import AccessDeniedError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_core.isolation")

PARTS = """\
(import hy.errors [HySyntaxError HyMacroExpansionError]
        hy.models [Symbol Expression]
        hy [mangle]
        hy.errors :as errs)

(defn bad-macro []
  (try (hy.eval '(defmacro m [#** kw]))
       (except [e HySyntaxError] "syntax error caught")))

(defn failing-expansion []
  (try (hy.eval '(do (defmacro boom [] (/ 1 0)) (boom)))
       (except [e hy.errors.HyMacroExpansionError] (isinstance e errs.HyLanguageError))))

(defn models [] [(isinstance 'x Symbol) (isinstance '(a b) Expression) (mangle "a-b")])
(defn new-enough [] hy.compat.PY3_10)

(defn reach-importer []
  (import hy.importer [read-many])
  read-many)
(defn reach-macros-module [] (import hy.macros :as m) m)
(defn reach-from-hy [] (import hy [compiler]) compiler)
(defn reach-attribute [] hy.compiler)
(defn reach-by-getattr [] (getattr hy "compiler"))
(defn reach-by-importer [] (hy.I "hy.compiler"))
(defn reach-by-require-vals [name] (hy.macros.require-vals name {} "ALL"))
(defn still-fine [] 42)
"""


@pytest.fixture(scope="module")
def parts():
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=10)) as m:
        m.load_script_from_source("parts", "lisp", PARTS)
        yield m


def test_hy_errors_are_caught_by_name(parts) -> None:
    assert parts.call_function("parts.bad-macro") == "syntax error caught"
    assert parts.call_function("parts.failing-expansion") is True


def test_models_mangle_and_version_flags(parts) -> None:
    assert parts.call_function("parts.models") == [True, True, "a_b"]
    assert parts.call_function("parts.new-enough") is (sys.version_info >= (3, 10))


@pytest.mark.parametrize(
    "function, part",
    [
        ("reach-importer", "hy.importer"),
        ("reach-macros-module", "hy.macros"),
        ("reach-from-hy", "'hy'"),
        ("reach-attribute", "hy.compiler"),
        ("reach-by-getattr", "hy.compiler"),
        ("reach-by-importer", "hy.compiler"),
    ],
)
def test_other_parts_of_hy_are_refused_when_reached(parts, function: str, part: str) -> None:
    with pytest.raises(AccessDeniedError) as info:
        parts.call_function(f"parts.{function}")
    assert part in info.value.message
    assert info.value.script == "parts" and info.value.line is not None
    assert parts.call_function("parts.still-fine") == 42


@pytest.mark.parametrize("module", ["os", "kryon_core.isolation.worker", "hy.core.macros", "builtins"])
def test_require_vals_imports_only_what_the_script_may(parts, module: str) -> None:
    """Modules the worker itself has loaded are no exception: the script's own import decides."""
    with pytest.raises(AccessDeniedError, match="not allowed"):
        parts.call_function("parts.reach-by-require-vals", [module])


@pytest.mark.parametrize(
    "source",
    [
        "(setv x hy._compat)",  # a private part: refused by the guard at load, as any `_` attribute
        "(setv hy.eval 1)",  # the runtime is read-only to scripts
        "(setv hy.compiler 1)",
        "(del hy.errors)",
        "(import hy.macros)",  # at top level the refusal ends the load
        "(import hy.errors.traceback)",
    ],
)
def test_writes_and_private_parts_stay_refused(source: str) -> None:
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=10)) as m:
        with pytest.raises(AccessDeniedError):
            m.load_script_from_source("w", "lisp", source)


def test_a_granted_packages_hy_module_defines_and_lends_macros(tmp_path, monkeypatch) -> None:
    """``kryon_tpkg.macs`` is imported after sealing (only the package is
    imported before): defining its macros remakes no code object and writes
    no bytecode, both refused in the worker."""
    package = tmp_path / "kryon_tpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "macs.hy").write_text("(defmacro triple [x] `(* 3 ~x))\n(defmacro twice [x] `(* 2 ~x))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    source = """\
(require kryon_tpkg.macs [triple])
(defn top [x] (triple x))
(defn inner [x]
  (require kryon_tpkg.macs [twice])
  [(twice x) (sorted (.keys (local-macros)))])
"""
    policy = SecurityPolicy.sandboxed(time_limit=10, allowed_modules=("kryon_tpkg",))
    with ScriptManager(cache=False, policy=policy) as m:
        m.load_script_from_source("lend", "lisp", source)
        assert m.call_function("lend.top", [5]) == 15
        assert m.call_function("lend.inner", [5]) == [10, ["twice"]]
    assert not list(package.rglob("macs*.pyc")), "imported after sealing: no bytecode written"


def test_annotations_and_causes_are_readable() -> None:
    """``__annotations__`` and ``__cause__`` hold what the script's own code
    put there (types it named, the exception it raised from)."""
    source = """\
(defn #^ int f [#^ str s] 1)
(defn notes [] [(get f.__annotations__ "return") (get (. f __annotations__) "s")])
(defn cause []
  (try (raise (ValueError "outer") :from (KeyError "inner"))
       (except [e ValueError] (type e.__cause__))))
"""
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=10)) as m:
        m.load_script_from_source("ann", "lisp", source)
        assert m.evaluate("lisp", "(= (notes) [int str])", script="ann") is True
        assert m.evaluate("lisp", "(is (cause) KeyError)", script="ann") is True


PRIVATE = """\
(defclass Box [] (defn __init__ [self] (setv self._inside 7)) (defn peek [self] self._inside))
(defn from-outside [] (. (Box) _inside))
(defn from-a-module [] (import random) random._os)
(defn class-of [] (. (tuple) __class__ __base__))
(defn subclasses [] (.__subclasses__ object))
(defn frame [] (defn g [] (yield 1)) (. (g) gi_frame))
(defn by-dots [] (.peek (Box)))
(defn fine [] 1)
"""


@pytest.mark.parametrize(
    "function, attribute",
    [("from-outside", "_inside"), ("from-a-module", "_os"), ("class-of", "__class__"),
     ("subclasses", "__subclasses__"), ("frame", "gi_frame")],
)
def test_refused_attribute_reads_are_refused_when_they_run(function: str, attribute: str) -> None:
    """Reading an attribute the guard refuses (`obj._x`, a dunder, a frame) is
    refused by the same rule, when it runs: the rest of the file loads and
    works (`self._x` is the script's own)."""
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=10)) as m:
        m.load_script_from_source("priv", "lisp", PRIVATE)
        with pytest.raises(AccessDeniedError, match=attribute) as info:
            m.call_function(f"priv.{function}")
        assert info.value.line is not None
        assert m.call_function("priv.by-dots") == 7 and m.call_function("priv.fine") == 1


@pytest.mark.parametrize(
    "source",
    [
        "(defn f [o] (setv o._x 1))",  # writes and deletions stay refused at load
        "(defn f [o] (del o._x))",
        "(defn f [o] (setv o.__class__ int))",
        "(defn f [] __builtins__)",  # and the interpreter's names
        "(. (tuple) __class__ __base__)",  # a refused read at top level ends the load
    ],
)
def test_refused_writes_and_names_end_the_load(source: str) -> None:
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=10)) as m:
        with pytest.raises(AccessDeniedError):
            m.load_script_from_source("priv", "lisp", source)
