"""``kryon run``: a script file, a script on stdin, or an app directory.

    kryon run FILE [--call NAME [ARG ...]] [--advance MS]
    kryon run - --lang LANG            the script from standard input
    kryon run APP_DIR [--watch]        an app (a directory with app.json)

A script run as a program is trusted (like ``python file.py``) unless
``--sandbox`` is given. A Python script is loaded under the id ``__main__``,
so its ``if __name__ == "__main__":`` block runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..dom import Document
from ..errors import ScriptError
from ..manager import ScriptManager
from ..sourcefiles import read_source
from ..values import EXTENSIONS, normalize_language
from . import exits
from .exits import CommandError
from .options import policy_from

__all__ = ["add_parser", "cmd_run"]

#: languages whose scripts see their id as ``__name__``
MAIN_ID_LANGUAGES = frozenset({"python"})
STDIN_NAME = "<stdin>"
_SCRIPT_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", parents=parents, help="run a script file, stdin (-), or an app directory",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="?", help="script file (the extension picks the language), - for stdin, or an app directory")
    p.add_argument("args", nargs="*", metavar="ARG", help="arguments of --call (JSON values, else strings)")
    p.add_argument("--call", metavar="NAME", help="then call the function NAME with the ARGs and print its result")
    p.add_argument("--lang", metavar="LANG", help="the script's language (required for -; overrides the extension)")
    p.add_argument("--advance", type=float, default=0, metavar="MS", help="then run timers for MS milliseconds")
    p.add_argument("--watch", action="store_true", help="(apps) reload scripts when their files change")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if args.path is None:
        raise CommandError("kryon run: give a script file, - (stdin) or an app directory (see kryon run --help)",
                           exits.USAGE)
    policy = policy_from(args)
    if args.args and not args.call:
        raise CommandError(f"unexpected argument {args.args[0]!r}: arguments follow --call NAME", exits.USAGE)
    if args.path == "-":
        if not args.lang:
            raise CommandError("kryon run -: give the script's language with --lang (for example --lang lua)",
                               exits.USAGE)
        return _run_script(args, policy, sys.stdin.buffer.read(), normalize_language(args.lang), STDIN_NAME, None)
    target = Path(args.path)
    if not target.exists():
        raise CommandError(f"{args.path}: no such file or directory", exits.NOINPUT)
    if target.is_dir():
        return _run_app(args, target, policy)
    if args.watch:
        raise CommandError("--watch applies to app directories", exits.USAGE)
    try:
        data = read_source(target, policy.max_source_size, script=target.stem)
    except OSError as exc:
        raise CommandError(f"{args.path}: cannot read: {exc.strerror}", exits.NOINPUT) from None
    except ScriptError as exc:  # past max_source_size, or not a regular file
        return _report(exc, {target.stem: args.path}, args.json)
    language = normalize_language(args.lang) if args.lang else None
    return _run_script(args, policy, data, language, args.path, target)


def _run_app(args: argparse.Namespace, directory: Path, policy: Any) -> int:
    for option in ("call", "lang"):
        if getattr(args, option):
            raise CommandError(f"--{option} applies to script files, not app directories", exits.USAGE)
    if not (directory / "app.json").is_file():
        raise CommandError(
            f"{args.path}: not an app: no app.json in it (an app directory holds app.json and its scripts; "
            "see examples/todo)", exits.NOINPUT)
    if args.watch:
        require_watchfiles()
    from ..app import run_app

    return run_app(directory, watch=args.watch, policy=policy if args.sandbox else None,
                   log_level=args.log_level_number, plugins=args.plugins)


def require_watchfiles() -> None:
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise CommandError("--watch needs the watchfiles package: pip install 'kryon-core[watch]'",
                           exits.UNAVAILABLE) from None


def script_logger(threshold: int) -> Callable[[str, str], None]:
    """What a script's ``kryon.log(message, level)`` does under the command:
    printed on stdout when at or above the ``--log-level``."""

    def log(level: str, message: str) -> None:
        if _SCRIPT_LOG_LEVELS.get(level, logging.INFO) >= threshold:
            print(message, flush=True)

    return log


def _run_script(
    args: argparse.Namespace, policy: Any, data: bytes, language: str | None, shown: str, path: Path | None
) -> int:
    manager = ScriptManager(policy=policy, plugins=args.plugins)
    try:
        if language is None:
            language = language_of(manager, path or Path(shown))
        script_id = "__main__" if language in MAIN_ID_LANGUAGES else script_id_for(path)
        files = {script_id: shown}
        doc = manager.setup_dom_bridge(Document(on_log=script_logger(args.log_level_number)))
        try:
            manager.load_script_from_source(script_id, language, data, filename=str(path) if path else None)
            if args.call:
                _call_and_print(manager, script_id, script_id_for(path), args)
            if args.advance:
                doc.advance(args.advance)
        except ScriptError as exc:
            return _report(exc, files, args.json)
        for failure in doc.errors:  # a listener or timer that failed
            return _report(failure, files, args.json)
        return exits.OK
    finally:
        manager.close()


def _report(exc: BaseException, files: dict[str, str], as_json: bool) -> int:
    from .report import print_error  # a run that succeeds never loads the error printer (json, traceback)

    return print_error(exc, files, as_json=as_json)


def script_id_for(path: Path | None) -> str:
    """A file's script id: its name without the extension (``se.lua.js`` -> ``se.lua``)."""
    return path.stem if path is not None else "stdin"


def language_of(manager: ScriptManager, path: Path) -> str:
    """The language a file's extension names, or a CommandError listing the known ones."""
    extensions = known_extensions(manager)
    language = extensions.get(path.suffix.lower())
    if language is None:
        known = " ".join(sorted(extensions))
        what = f"extension '{path.suffix}'" if path.suffix else "file without an extension"
        raise CommandError(
            f"{path}: no language is known for the {what} (known: {known}); give one with --lang", exits.UNAVAILABLE
        )
    return language


def known_extensions(manager: ScriptManager) -> dict[str, str]:
    """Extension -> language: the built-in table and what installed engines claim."""
    table = dict(EXTENSIONS)
    for spec in manager.engine_specs.values():
        table.update({ext.lower(): spec.language for ext in spec.extensions})
    return table


def _call_and_print(manager: ScriptManager, script_id: str, stem: str, args: argparse.Namespace) -> None:
    functions = manager.functions()
    wanted = args.call.removeprefix(f"{stem}.") if f"{script_id}.{args.call}" not in functions else args.call
    name = f"{script_id}.{wanted}"
    if name not in functions:
        defined = ", ".join(sorted(f[len(script_id) + 1 :] for f in functions if f.startswith(script_id + ".")))
        raise CommandError(
            f"--call {args.call}: the script defines no function '{wanted}' (it defines: {defined or 'none'})",
            exits.USAGE)
    result = manager.call_function(name, [parse_arg(a) for a in args.args])
    if result is None and not args.json:
        return
    from .output import to_json

    text, notes = to_json(result)
    print(text, flush=True)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def parse_arg(text: str) -> Any:
    """A --call argument: JSON when it parses (numbers, true, lists...), else the text."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text
