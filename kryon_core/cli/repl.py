"""``kryon repl [LANG]``: an interactive loop over one manager.

Each line is evaluated in the current language's console script, so state
persists from line to line; ``:lang X`` switches language and keeps the
manager, so a function defined in one language is callable from another
(``kryon.call("lua-console.f", 2)``, or ``kryon.call("f", 2)`` while the
name is unique). Values print as JSON; errors as ``<repl>:line:column``
messages, after which the loop goes on. Input that is not finished (open
brackets, a Lua block without its ``end``, a Python block after a line
ending in ``:``, a trailing backslash) continues on the next line. With a
terminal, readline gives line editing and a history kept across sessions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..dom import Document
from ..errors import ScriptError
from ..manager import ScriptManager
from ..values import normalize_language
from . import exits
from .evaluate import console_id, require_evaluate
from .exits import CommandError
from .options import policy_from
from .output import to_json
from .report import describe, format_text
from .run import script_logger

__all__ = ["add_parser", "cmd_repl", "Repl", "needs_more"]

#: the language picked when none is given: the first of these that is installed
PREFERRED = ("lua", "javascript", "python", "wren", "lisp")
HELP = """commands:
  :lang X      switch to language X (the state of each language is kept)
  :langs       the installed languages
  :functions   the functions defined so far, in every language
  :help        this text
  :quit        leave (or Ctrl-D)
a line ending in \\ continues on the next one."""

_STRINGS = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|`(?:\\.|[^`\\])*`", re.S)
_LUA_OPEN = re.compile(r"\b(function|do|if|repeat)\b")
_LUA_CLOSE = re.compile(r"\b(end|until)\b")


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("repl", parents=parents, help="an interactive loop in one or several languages",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("language", nargs="?", help=f"the first language (default: the first installed of {', '.join(PREFERRED)})")
    p.add_argument("--history", metavar="FILE", help="history file (default: in the user's state directory)")
    p.set_defaults(func=cmd_repl)


def needs_more(language: str, text: str) -> bool:
    """Whether ``text`` is an unfinished piece of input in ``language`` (a heuristic,
    on the text with its string literals removed)."""
    if text.endswith("\\"):
        return True
    bare = _STRINGS.sub('""', text)
    if language == "lua":
        bare = re.sub(r"--.*", "", bare)
    elif language == "python":
        bare = re.sub(r"#.*", "", bare)
    elif language == "lisp":
        bare = re.sub(r";.*", "", bare)
    else:
        bare = re.sub(r"//.*", "", bare)
    if sum(bare.count(c) for c in "([{") > sum(bare.count(c) for c in ")]}"):
        return True
    if language == "lua" and len(_LUA_OPEN.findall(bare)) > len(_LUA_CLOSE.findall(bare)):
        return True
    if language == "python":  # a block goes on until an empty line
        first = text.split("\n", 1)[0].rstrip()
        return (first.endswith(":") or first.startswith("@")) and not text.endswith("\n")
    return False


class Repl:
    """The loop's state: one manager, the current language, and how to read a line."""

    def __init__(self, manager: ScriptManager, language: str, *, read: Callable[[str], str],
                 interactive: bool, as_json: bool = False) -> None:
        self.manager = manager
        self.language = language
        self.read = read
        self.interactive = interactive
        self.as_json = as_json

    def prompt(self, more: bool) -> str:
        if not self.interactive:
            return ""
        return "... " if more else f"{self.language}> "

    def run(self) -> int:
        if self.interactive:
            print(f"kryon repl: {self.language} (:help for commands, Ctrl-D to leave)", flush=True)
        while True:
            try:
                text = self._read_input()
            except EOFError:
                if self.interactive:
                    print()
                return exits.OK
            except KeyboardInterrupt:
                print("\n(interrupted)", flush=True)
                continue
            if text is None:
                continue
            if text.startswith(":"):
                if self._command(text.strip()):
                    return exits.OK
                continue
            self._evaluate(text)

    def _read_input(self) -> str | None:
        text = self.read(self.prompt(False))
        if not text.strip():
            return None
        if text.startswith(":"):
            return text
        while needs_more(self.language, text):
            text = (text[:-1] if text.endswith("\\") else text) + "\n" + self.read(self.prompt(True))
        return text.rstrip("\n")

    def _evaluate(self, code: str) -> None:
        try:
            value = self.manager.evaluate(self.language, code)
        except ScriptError as exc:
            files = {console_id(self.language): "<repl>"}
            if self.as_json:
                print(json.dumps(describe(exc, files)), file=sys.stderr, flush=True)
            else:
                print(format_text(exc, files), file=sys.stderr, flush=True)
            return
        if value is not None:
            text, notes = to_json(value)
            print(text, flush=True)
            for note in notes:
                print(f"note: {note}", file=sys.stderr, flush=True)

    def _command(self, line: str) -> bool:
        """Run a :command; True means leave."""
        name, _, rest = line.partition(" ")
        if name in (":quit", ":q", ":exit"):
            return True
        if name == ":help":
            print(HELP, flush=True)
        elif name == ":langs":
            print(" ".join(self.manager.languages), flush=True)
        elif name == ":functions":
            print("\n".join(sorted(self.manager.functions())) or "(none)", flush=True)
        elif name == ":lang" and rest.strip():
            language = normalize_language(rest.strip())
            try:
                require_evaluate(self.manager, language)
            except CommandError as exc:
                print(f"error: {exc.message}", file=sys.stderr, flush=True)
                return False
            self.language = language
            if self.interactive:
                print(f"now {language}", flush=True)
        else:
            print(f"error: unknown command {line!r} (:help lists them)", file=sys.stderr, flush=True)
        return False


def _history_file(args: argparse.Namespace) -> Path:
    if args.history:
        return Path(args.history)
    if os.environ.get("KRYON_HISTORY"):
        return Path(os.environ["KRYON_HISTORY"])
    import platformdirs

    return Path(platformdirs.user_state_dir("kryon", appauthor=False)) / "repl_history"


def _with_readline(history: Path) -> Callable[[], None]:
    """Turn on line editing and history; returns what saves the history at exit."""
    try:
        import readline
    except ImportError:  # no readline on this platform: plain input still works
        return lambda: None
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(history)
        except OSError:
            pass

    return save


def cmd_repl(args: argparse.Namespace) -> int:
    manager = ScriptManager(policy=policy_from(args), plugins=args.plugins)
    try:
        manager.setup_dom_bridge(Document(on_log=script_logger(args.log_level_number)))
        if args.language:
            language = normalize_language(args.language)
        else:
            installed = manager.languages
            language = next((lang for lang in PREFERRED if lang in installed), installed[0] if installed else "")
            if not language:
                raise CommandError("no engines installed (pip install kryon-lua, for one)", exits.UNAVAILABLE)
        require_evaluate(manager, language)
        interactive = sys.stdin.isatty()
        save = _with_readline(_history_file(args)) if interactive else (lambda: None)
        try:
            return Repl(manager, language, read=input, interactive=interactive, as_json=args.json).run()
        finally:
            save()
    finally:
        manager.close()
