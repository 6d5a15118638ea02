"""Static scans of JavaScript source text: the functions a script defines
(before it runs, for ``compile``) and parameter names read from a
function's source (``Function.prototype.toString``) after it ran."""

from __future__ import annotations

import re
from collections.abc import Iterator

from kryon_core import FunctionInfo

#: an identifier the host may look up as a global
IDENT = re.compile(r"^[A-Za-z_$][\w$]*$")

DECLARED = re.compile(r"(?:\bfunction\s*\*?\s*|\b(?:const|let|var|class)\s+)([A-Za-z_$][\w$]*)")
FUNCTION_DEF = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?P<async>async[ \t]+)?function[ \t]*(?P<gen>\*)?[ \t]*(?P<name>[A-Za-z_$][\w$]*)[ \t]*\((?P<params>[^)]*)\)"
    r"|^[ \t]*(?:export[ \t]+)?(?:const|let|var)[ \t]+(?P<name2>[A-Za-z_$][\w$]*)[ \t]*=[ \t]*(?P<async2>async[ \t]+)?"
    r"(?:function[ \t]*(?P<gen2>\*)?[ \t]*[A-Za-z_$]?[\w$]*[ \t]*\((?P<params2>[^)]*)\)"
    r"|\((?P<params3>[^)]*)\)[ \t]*=>|(?P<param4>[A-Za-z_$][\w$]*)[ \t]*=>)",
    re.M,
)


def scan_functions(text: str) -> dict[str, FunctionInfo]:
    """Functions a static scan of the source finds (before it runs): top-level
    ``function`` declarations and ``const f = (...) =>`` / ``function`` forms."""
    found: dict[str, FunctionInfo] = {}
    for m in FUNCTION_DEF.finditer(text):
        if m.group("name"):
            name, params, is_async, is_gen = m.group("name"), m.group("params"), bool(m.group("async")), bool(m.group("gen"))
        else:
            name = m.group("name2")
            params = next((m.group(g) for g in ("params2", "params3") if m.group(g) is not None), m.group("param4"))
            is_async, is_gen = bool(m.group("async2")), bool(m.group("gen2"))
        names, variadic = _split_params(params or "")
        found.setdefault(name, FunctionInfo(
            name=name, parameter_count=len(names), parameter_names=tuple(names), is_async=is_async,
            is_generator=is_gen, is_variadic=variadic, line=text.count("\n", 0, m.start()) + 1,
        ))
    return found


def parse_params(src: str) -> tuple[list[str], bool]:
    """Parameter names of a function from its source text (``Function.prototype.toString``)."""
    s = src.lstrip()
    if s.startswith("async") and not re.match(r"async\s*=>", s):
        s = s[5:].lstrip()
    if s.startswith("function"):
        i = s.find("(")
        if i < 0:
            return [], False
        return _split_params(_balanced(s, i))
    if s.startswith("("):
        return _split_params(_balanced(s, 0))
    m = re.match(r"([A-Za-z_$][\w$]*)\s*=>", s)
    if m:
        return [m.group(1)], False
    i = s.find("(")  # method shorthand: name(a, b) { ... }
    if i >= 0:
        return _split_params(_balanced(s, i))
    return [], False


def _brackets(s: str, start: int) -> Iterator[tuple[int, str, int, bool]]:
    """Each character of ``s`` from ``start``: its index, itself, the bracket
    depth after it and whether it is inside a string literal (a quote opens
    one, the same quote closes it; a backslash inside takes the next
    character as it is, an escaped backslash too)."""
    depth, quote, escaped = 0, "", False
    for j in range(start, len(s)):
        c = s[j]
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
            yield j, c, depth, True
            continue
        if c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        yield j, c, depth, False


def _balanced(s: str, start: int) -> str:
    """The text inside the bracket at ``start`` and the one that closes it."""
    for j, c, depth, quoted in _brackets(s, start):
        if depth == 0 and not quoted and c in ")]}":
            return s[start + 1 : j]
    return s[start + 1 :]


def _split_params(text: str) -> tuple[list[str], bool]:
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
    parts, cur = [], ""
    for _, c, depth, quoted in _brackets(text, 0):
        if c == "," and depth == 0 and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    names, variadic = [], False
    for p in (x.strip() for x in parts):
        if not p:
            continue
        if p.startswith("..."):
            variadic = True
            continue
        # the name (or destructuring pattern) ends at its default value: the first "=" outside brackets and strings
        cut = next((j for j, c, depth, quoted in _brackets(p, 0) if c == "=" and depth == 0 and not quoted), len(p))
        names.append(re.sub(r"\s+", " ", p[:cut]).strip() if p[0] in "[{" else p[:cut].strip())
    return names, variadic


def declared_names(source: str) -> list[str]:
    """Every name a ``function``/``const``/``let``/``var``/``class`` declaration in the source binds."""
    return sorted(set(DECLARED.findall(source)))
