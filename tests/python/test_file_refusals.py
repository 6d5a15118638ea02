"""Inside a sandboxed Python or Lisp worker a refused file operation is a
``PermissionError`` (an ``OSError``) as well as the sandbox's
``AccessDenied``: standard-library code that goes on without a file it
cannot read (``linecache``, so ``traceback``) works, a script's ``except
OSError`` catches it, and uncaught it still reaches the host as an
``AccessDeniedError`` naming the script, line and language. Other refusals
are not OSErrors."""

from __future__ import annotations

import sys

import pytest

from kryon_core import AccessDeniedError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_python")
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")

PYTHON = """import traceback, linecache, io
def formatted():
    try:
        1 / 0
    except ZeroDivisionError:
        return traceback.format_exc()
def lines():
    return linecache.getlines('/etc/passwd')
def caught(how):
    opener = open if how == 'open' else io.open
    try:
        opener('/etc/passwd')
    except OSError as exc:
        return [type(exc).__name__, isinstance(exc, PermissionError), isinstance(exc, AccessDenied)]
def uncaught():
    return open('/etc/passwd').read()
def attribute():
    try:
        getattr(uncaught, '__globals__')
    except OSError:
        return 'an OSError'
    except AccessDenied:
        return 'not an OSError'
"""

LISP = """(import traceback linecache io)
(defn formatted []
  (try (/ 1 0) (except [ZeroDivisionError] (traceback.format-exc))))
(defn lines [] (linecache.getlines "/etc/passwd"))
(defn caught [how]
  (setv opener (if (= how "open") open io.open))
  (try (opener "/etc/passwd")
    (except [exc OSError]
      [(. (type exc) __name__) (isinstance exc PermissionError) (isinstance exc AccessDenied)])))
(defn uncaught []
  (.read (open "/etc/passwd")))
"""


@pytest.mark.parametrize("language", ["python", "lisp"])
def test_a_refused_file_operation_is_a_permission_error_in_the_worker(language: str) -> None:
    if language == "lisp":
        pytest.importorskip("kryon_lisp")
    policy = SecurityPolicy.sandboxed(time_limit=5, allowed_modules=["traceback", "linecache", "io"])
    with ScriptManager(cache=False, policy=policy) as m:
        m.load_script_from_source("f", language, PYTHON if language == "python" else LISP)
        text = m.call_function("f.formatted")
        assert "ZeroDivisionError" in text and "Traceback" in text, text
        assert m.call_function("f.lines") == [], "linecache goes on without the file it cannot read"
        for how in ("open", "io.open"):  # the curated builtin and the audit hook's refusal
            assert m.call_function("f.caught", [how]) == ["FileDenied", True, True]
        with pytest.raises(AccessDeniedError) as info:
            m.call_function("f.uncaught")
        err = info.value
        assert (err.script, err.language) == ("f", language)
        assert err.line == (16 if language == "python" else 11)
        if language == "python":
            assert m.call_function("f.attribute") == "not an OSError"
        assert m.call_function("f.lines") == [], "the worker keeps working"
