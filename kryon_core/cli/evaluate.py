"""``kryon eval LANG CODE``: evaluate code in one language and print its value as JSON.

The code runs in the language's console script (``ScriptManager.evaluate``),
trusted unless ``--sandbox``; ``-`` as CODE reads it from stdin. What the
code prints goes to stdout before the value. An error is reported at
``<eval>:line:column``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..dom import Document
from ..engine import ScriptEngine
from ..errors import ScriptError
from ..manager import ScriptManager
from ..values import normalize_language
from . import exits
from .exits import CommandError
from .options import policy_from
from .output import to_json
from .report import print_error
from .run import script_logger

__all__ = ["add_parser", "cmd_eval", "console_id", "require_evaluate"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("eval", parents=parents, help="evaluate code in a language and print its value as JSON",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("language", help="language id (lua, javascript, python, wren, lisp, ...)")
    p.add_argument("code", help="the code; - reads it from stdin")
    p.set_defaults(func=cmd_eval)


def console_id(language: str) -> str:
    """The id of the script ``ScriptManager.evaluate`` keeps a language's console state in."""
    return f"{language}-console"


def require_evaluate(manager: ScriptManager, language: str) -> None:
    """A CommandError (69) unless ``language`` is installed and its engine can evaluate code."""
    if language not in manager.languages:
        installed = ", ".join(manager.languages) or "none"
        raise CommandError(f"no engine for language '{language}' is installed (installed: {installed})",
                           exits.UNAVAILABLE)
    if type(manager.engine(language)).evaluate is ScriptEngine.evaluate:
        raise CommandError(f"the {language} engine cannot evaluate code yet (it does not implement "
                           "ScriptEngine.evaluate)", exits.UNAVAILABLE)


def cmd_eval(args: argparse.Namespace) -> int:
    language = normalize_language(args.language)
    code = sys.stdin.read() if args.code == "-" else args.code
    manager = ScriptManager(policy=policy_from(args), plugins=args.plugins)
    try:
        manager.setup_dom_bridge(Document(on_log=script_logger(args.log_level_number)))
        require_evaluate(manager, language)
        try:
            value = manager.evaluate(language, code)
        except ScriptError as exc:
            return print_error(exc, {console_id(language): "<eval>"}, as_json=args.json)
        text, notes = to_json(value)
        print(text, flush=True)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return exits.OK
    finally:
        manager.close()
