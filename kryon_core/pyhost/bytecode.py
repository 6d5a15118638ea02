"""Compiled scripts' bytecode: what the compilation cache hands back.

``CompiledScript.bytecode`` is ``marshal.dumps`` of the script's code object.
A cached entry may have been compiled for a script of another name (the cache
keys by source), so the code objects' file names are set to the script id on
the way in: stacks and breakpoints always name the right script, and a warm
load never runs the compiler.
"""

from __future__ import annotations

import marshal
import types

from ..engine import CompiledScript
from ..errors import CompileError

__all__ = ["load_bytecode"]


def load_bytecode(compiled: CompiledScript, language: str) -> types.CodeType:
    """The code object in ``compiled.bytecode``, its file names the script id
    (CompileError when the bytes are not a code object)."""
    try:
        code = marshal.loads(compiled.bytecode)
    except (ValueError, EOFError, TypeError) as exc:
        raise CompileError(f"corrupt bytecode: {exc}", language=language, script=compiled.id) from None
    if not isinstance(code, types.CodeType):
        raise CompileError("bytecode is not a code object", language=language, script=compiled.id)
    return _renamed(code, compiled.id) if code.co_filename != compiled.id else code


def _renamed(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(_renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)
