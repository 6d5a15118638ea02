"""Reading Kryon Lisp source without compiling it.

Reading runs no user code (only compiling runs macros), so these checks are
safe on any source, sandboxed or not:

- :func:`sandbox_violation` / :func:`check_sandboxable`: forms that would run
  code while compiling (the host never compiles such sandboxed source: its
  worker does);
- :func:`has_relative_require`: a ``(require .macros ...)`` whose expansion
  depends on a file beside the script (compiled at load, not for the cache);
- :func:`may_import_relatively`: an ``(import .helpers [f])`` a sandboxed
  worker resolves through the script's compiler (so it compiles the source);
- :func:`spelled_names`: the names functions are registered under, as the
  source spells them;
- :func:`unclosed_opener`: the bracket or string a truncated source leaves open.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import hy
from hy.errors import HyLanguageError
from hy.models import Expression, FString, Keyword, List, Symbol
from hy.reader.exceptions import LexException

from kryon_core import AccessDeniedError, StackFrame

from .plugin import LANGUAGE

__all__ = [
    "top_level_name",
    "COMPILE_TIME_FORMS",
    "sandbox_violation",
    "check_sandboxable",
    "may_run_code_while_compiling",
    "has_relative_require",
    "may_import_relatively",
    "spelled_names",
    "unclosed_opener",
    "CLOSERS",
]

#: the name stack frames use for a script's top level
top_level_name = "<top level>"


def _read(source: str, name: str) -> Any:
    return hy.read_many(source, filename=name)


_RELATIVE_REQUIRE = re.compile(r"\(\s*require\s+\.")


def has_relative_require(source: str, name: str) -> bool:
    """Whether the source requires macros from a module beside the script."""
    if not _RELATIVE_REQUIRE.search(source):
        return False
    try:
        forms = list(_read(source, name))
    except (LexException, RecursionError, HyLanguageError):
        return False  # the compiler reports the reader error
    todo = list(forms)
    while todo:
        form = todo.pop()
        if isinstance(form, Expression) and len(form) > 1 and form[0] == Symbol("require"):
            target = form[1]
            if isinstance(target, Expression) and target and isinstance(target[0], Symbol) and set(str(target[0])) == {"."}:
                return True
        if isinstance(form, tuple):
            todo.extend(form)
    return False


#: ``(import .helpers [f])``, ``(import math .helpers [f])``: an import form naming a module that starts with a dot
_RELATIVE_IMPORT = re.compile(r"\(\s*import\b[^()]*?\s\.")


def may_import_relatively(source: str) -> bool:
    """Whether the source might import a file beside the script (a text
    search that errs on the side of yes; NFKC-normalised as Hy reads)."""
    return _RELATIVE_IMPORT.search(unicodedata.normalize("NFKC", source)) is not None


_DEFINERS = {"defn", "defn/a"}
_FNS = {"fn", "fn/a"}


def spelled_names(forms: list[Any]) -> dict[str, str]:
    """Mangled name -> the name as the source spells it, for the functions
    top-level forms define: ``(defn make-adder ...)`` registers as
    ``make-adder``, ``(defn make_adder ...)`` as ``make_adder`` (Hy mangles
    both to ``make_adder``; the registry keeps what the author wrote)."""
    names: dict[str, str] = {}
    for form in forms:
        if not isinstance(form, Expression) or not form or not isinstance(form[0], Symbol):
            continue
        head = str(form[0])
        if head in _DEFINERS:
            for part in form[1:]:
                if isinstance(part, Symbol):
                    names[hy.mangle(part)] = str(part)
                    break
                if not isinstance(part, (Keyword, List)):
                    break
        elif head == "setv":
            pairs = form[1:]
            for target, value in zip(pairs[::2], pairs[1::2], strict=False):
                if (
                    isinstance(target, Symbol)
                    and isinstance(value, Expression)
                    and value
                    and isinstance(value[0], Symbol)
                    and str(value[0]) in _FNS
                ):
                    names[hy.mangle(target)] = str(target)
    return names


#: the closer each opening bracket needs
CLOSERS = {"(": ")", "[": "]", "{": "}"}


def unclosed_opener(source: str, stop: tuple[int, int] | None = None) -> tuple[str, int, int] | None:
    """The innermost bracket or string left open at the end of ``source``
    (or just before the 1-based (line, column) ``stop``), as (character,
    line, column), both 1-based; None when everything closes."""
    stack: list[tuple[str, int, int]] = []
    line, col = 1, 0
    i, n = 0, len(source)
    in_string: tuple[str, int, int] | None = None
    in_comment = False
    while i < n:
        ch = source[i]
        col += 1
        if stop is not None and (line, col) >= stop:
            break
        if ch == "\n":
            line, col = line + 1, 0
            in_comment = False
        elif in_comment:
            pass
        elif in_string is not None:
            if ch == "\\":
                i += 1
                col += 1
                if i < n and source[i] == "\n":
                    line, col = line + 1, 0
            elif ch == '"':
                in_string = None
        elif ch == ";":
            in_comment = True
        elif ch == '"':
            in_string = ('"', line, col)
        elif ch in CLOSERS:
            stack.append((ch, line, col))
        elif ch in ")]}" and stack and CLOSERS[stack[-1][0]] == ch:
            stack.pop()
        i += 1
    if in_string is not None:
        return in_string
    return stack[-1] if stack else None


#: forms that run code while compiling (or import modules then): refused in
#: sandboxed scripts, so that compiling one runs only Hy's own macros
COMPILE_TIME_FORMS = frozenset(
    hy.mangle(name)
    for name in (
        "defmacro", "defreader", "do-mac", "eval-and-compile", "eval-when-compile",
        "require", "get-macro", "local-macros", "export",
        # evaluates its values while compiling (``(pragma :hy (do ...))``)
        "pragma",
    )
)


def _head(form: Any) -> str | None:
    """The name a form's head calls, as Hy's macro expansion sees it."""
    head = form[0]
    if isinstance(head, Symbol):
        return str(head)
    if (
        isinstance(head, Expression)
        and head
        and head[0] == Symbol(".")
        and all(isinstance(part, Symbol) for part in head)
    ):
        return ".".join(str(part) for part in head[1:])
    return None


def sandbox_violation(source: str, name: str) -> tuple[str, int | None, int | None] | None:
    """Why sandboxed ``source`` may not be compiled, as (message, line,
    column), or None. Only reads (Hy's reader runs no user code): refuses
    macro definitions, reader macros, compile-time evaluation, ``require``
    and one-shot ``hy.R`` requires anywhere in the source. A reader error
    is left for the compiler to report, but the forms before it are checked:
    the compiler would compile them before reaching it."""
    todo: list[Any] = []
    try:
        for form in hy.read_many(source, filename=name):
            todo.append(form)
    except (LexException, RecursionError, HyLanguageError):
        pass
    while todo:
        form = todo.pop()
        if isinstance(form, Expression) and form:
            head = _head(form)
            if head is not None:
                mangled = ".".join(hy.mangle(part) if part else part for part in head.split("."))
                if mangled in COMPILE_TIME_FORMS or mangled.startswith("hy.R."):
                    return (
                        f"({head} ...) runs code while compiling, which sandboxed Lisp does not allow",
                        getattr(form, "start_line", None),
                        getattr(form, "start_column", None),
                    )
        if isinstance(form, tuple):  # every sequence model, quoted forms included
            todo.extend(form)
        elif isinstance(form, FString):
            todo.extend(form)
    return None


#: words any form that runs code while compiling must spell (a cheap first look at the source)
_COMPILE_TIME_WORDS = re.compile(
    r"defmacro|defreader|do-mac|do_mac|eval-when-compile|eval_when_compile|eval-and-compile|eval_and_compile"
    r"|require|get-macro|get_macro|local-macros|local_macros|export|pragma|\bhy\b"
    # the curated runtime by its own name: its hy.eval and hy.I act for scripts their worker compiled
    r"|kryon_lisp_hy"
)


def may_run_code_while_compiling(source: str) -> bool:
    """Whether compiling ``source`` might run code of its own: a text search
    for the words such forms are spelled with (and ``hy``, through which
    ``hy.R`` and the like can be reached), so it errs on the side of yes;
    :func:`sandbox_violation` gives the answer form by form. The text is
    NFKC-normalised first, as Hy normalises symbols (a full-width
    ``ｄｅｆｍａｃｒｏ`` is ``defmacro``)."""
    return _COMPILE_TIME_WORDS.search(unicodedata.normalize("NFKC", source)) is not None


def check_sandboxable(source: str, name: str) -> None:
    """Raise AccessDeniedError when sandboxed ``source`` contains a form
    that would run code while compiling (see :func:`sandbox_violation`)."""
    found = sandbox_violation(source, name)
    if found is not None:
        message, line, column = found
        frame = StackFrame(top_level_name, script=name, line=line, column=column, language=LANGUAGE)
        raise AccessDeniedError(message, language=LANGUAGE, script=name, line=line, column=column, stack=[frame])
