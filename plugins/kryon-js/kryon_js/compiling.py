"""The host's half of the compile guards (``compile_guards.js``): under a
time or memory limit, every source a script compiles at run time has its
direct-eval sites rewritten (``evalsites.py``), so a direct eval inside it
passes the guard too; under a time limit it is also measured against the
policy's ``max_source_size`` and its regular-expression literals against
``regexcost.py``'s bound. The script's own source, code the host evaluates in
it and the debugger's probed copy are rewritten before they are compiled."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from kryon_core import CompileError

from .evalsites import EvalSiteError, SiteTimeout, may_have_sites, rewrite, rewrite_mapped
from .plugin import LANGUAGE
from .regexcost import CostlyPattern, ReadTimeout, check_literals

if TYPE_CHECKING:
    from .state import ScriptState

#: what QuickJS writes before the parameters of a function the constructors make (kind 1-4)
HEADS = {1: "(function anonymous(", 2: "(function* anonymous(", 3: "(async function anonymous(",
         4: "(async function* anonymous("}
#: the text between the parameters and the body
MIDDLE = "\n) {\n"
TAIL = "\n})"


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def host_compile(state: ScriptState, kind: int, a: str, b: str) -> str:
    """``kind`` 0: ``a`` is code for ``eval``; 1-4: ``a`` the parameters and
    ``b`` the body for a Function constructor. Returns ``"0"`` + the JSON
    ``[a', b']`` to compile, ``"1"`` (over max_source_size), ``"2"`` + a
    message (refused), ``"3"`` (the deadline passed while reading), ``"4"`` + a
    message (a regular-expression literal too costly to compile, regexcost.py)."""
    limit = state.source_bound
    if limit is not None and utf8_size(a) + utf8_size(b) > limit:
        return "1"
    expired = state.host.expired
    if state.regex_guard:
        try:
            check_literals(a if kind == 0 else HEADS[kind] + a + MIDDLE + b + TAIL, expired)
        except ReadTimeout:
            return "3"
        except CostlyPattern as exc:
            return "4" + exc.message + (f" (line {exc.line}, column {exc.column})" if exc.line is not None else "")
    try:
        if kind == 0:
            out = [rewrite(a, expired=expired), ""]
        else:
            head = HEADS[kind]
            out = [rewrite(a, head, MIDDLE + TAIL, expired), rewrite(b, head + MIDDLE, TAIL, expired)]
    except SiteTimeout:
        return "3"
    except EvalSiteError as exc:
        where = f" (line {exc.line}, column {exc.column})" if exc.line is not None else ""
        return "2" + exc.message + where
    return "0" + json.dumps(out)


def checked_source(state: ScriptState, source: str, name: str, *, top_level: bool = False) -> str:
    """``source`` (a script, code evaluated in it) as it is compiled: with its
    eval sites rewritten when the script's compile guards are on. For the
    script's own source (``top_level``), the map of its columns is kept for
    error positions."""
    if not state.eval_guard or not may_have_sites(source):
        return source
    try:
        text, columns = rewrite_mapped(source)
    except EvalSiteError as exc:
        raise CompileError(exc.message, language=LANGUAGE, script=name, line=exc.line, column=exc.column) from None
    if top_level:
        state.columns = columns
    return text
