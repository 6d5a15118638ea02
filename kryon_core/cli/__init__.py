"""The ``kryon`` command (also ``python -m kryon_core``).

    kryon engines                       installed engines, versions and capabilities
    kryon run FILE [--call NAME ARGS]   run a script (language from its extension)
    kryon run - --lang LANG             run a script read from stdin
    kryon run APP [--watch]             run an app directory headlessly (reload on change)
    kryon eval LANG CODE                evaluate code and print its value as JSON
    kryon repl [LANG]                   an interactive loop (:lang X switches language)
    kryon serve APP [--port N]          the app as a live web page with an inspector
    kryon debug [--listen HOST:PORT]    a Debug Adapter Protocol server for editors
    kryon cache info|clear              the compilation cache
    kryon --version                     kryon-core's and each engine's version

What scripts print goes to stdout. An error goes to stderr as
``path:line:column: error: message [language]`` followed by the script's
stack (``--json``: one JSON object), and the exit status tells its kind
(see ``kryon_core.cli.exits``: 64 usage, 65 compile, 66 no input,
69 unavailable, 70 runtime). ``KRYON_DEBUG=1`` adds Python's traceback
for failures of the command itself.

Each command lives in its own module of this package and adds its parser
with ``add_parser(subparsers, parents)``; a run imports and builds only the
module and parser of the command it was given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import NoReturn

from ..errors import ScriptError
from . import exits
from .exits import CommandError
from .options import common_options, configure_logging, load_plugins, policy_options

__all__ = ["main", "build_parser"]

#: command -> the module of this package that adds its parser and runs it
COMMANDS = {"engines": "engines", "run": "run", "eval": "evaluate", "repl": "repl", "serve": "serve",
            "debug": "debug", "cache": "cache"}
#: commands whose scripts run under a policy (they take --sandbox and the limits)
POLICY_COMMANDS = frozenset({"run", "eval", "repl", "serve"})


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as a CommandError (exit 64) instead of exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see {self.prog} --help)", exits.USAGE)


def build_parser(only: Iterable[str] = COMMANDS) -> tuple[Parser, dict[str, Parser]]:
    """The top-level parser and one parser per command (of the commands
    ``only`` names: each command's module is imported when its parser is built)."""
    top = Parser(prog="kryon", parents=[common_options(suppress=False)],
                 description="Run scripts in every installed language.",
                 epilog=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="store_true", help="show kryon-core's and each engine's version")
    top.add_argument("command", nargs="?", help="engines, run, eval, repl, serve, debug or cache")
    sub = argparse.ArgumentParser(add_help=False).add_subparsers(parser_class=Parser)
    shared = common_options(suppress=True)
    for command in only:
        module = importlib.import_module(f"{__name__}.{COMMANDS[command]}")
        module.add_parser(sub, [shared, policy_options()] if command in POLICY_COMMANDS else [shared])
    commands = {name: parser for name, parser in sub.choices.items()}
    for name, parser in commands.items():
        parser.prog = f"kryon {name}"
    return top, commands


def _split(argv: list[str]) -> tuple[list[str], str | None, list[str]]:
    """(options before the command, the command, everything after it)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--log-level", "--plugin"):
            i += 2
            continue
        if not arg.startswith("-") or arg == "-":
            return argv[:i], arg, argv[i + 1 :]
        i += 1
    return argv, None, []


def parse(argv: list[str]) -> argparse.Namespace:
    before, command, after = _split(argv)
    top, commands = build_parser([command] if command in COMMANDS else [])
    args = top.parse_args(before)
    if args.version:
        return args
    if command is None:
        raise CommandError(f"no command given: one of {', '.join(COMMANDS)} (see kryon --help)", exits.USAGE)
    parser = commands.get(command)
    if parser is None:
        raise CommandError(f"unknown command '{command}': use one of {', '.join(COMMANDS)}", exits.USAGE)
    args.command = command
    # intermixed: options anywhere, positionals in order (`run --call f x.lua 1 2`)
    return parser.parse_intermixed_args(after, namespace=args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    debug = os.environ.get("KRYON_DEBUG", "") not in ("", "0")
    try:
        args = parse(argv)
        as_json = args.json
        args.plugins = load_plugins(args.plugin)
        if args.version:
            from .engines import version_text

            print(version_text(args.plugins))
            return exits.OK
        args.log_level_number = configure_logging(args.log_level)
        return int(args.func(args))
    except KeyboardInterrupt:
        return exits.INTERRUPTED
    except BrokenPipeError:  # `kryon ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (CommandError, ScriptError) as exc:
        from .report import print_error  # only a failed command reports (json, traceback, the stack printer)

        return print_error(exc, as_json=as_json)
    except Exception as exc:  # a failure of the command itself: a message, the traceback on request
        if debug:
            import traceback

            traceback.print_exc()
        else:
            print(f"kryon: internal error: {type(exc).__name__}: {exc} (KRYON_DEBUG=1 shows the traceback)",
                  file=sys.stderr)
        return exits.SOFTWARE
