"""The ``kryon`` command.

    kryon engines                      installed engines, their distributions and capabilities
    kryon run FILE [--call NAME ARGS]  run a script (language from its extension)
    kryon run APP [--watch]            run an app directory headlessly (reload on change)
    kryon serve APP [--port N]         the app as a live web page on localhost

What scripts print goes to stdout. An error goes to stderr with language,
script, line and the script's stack, and the exit status tells its kind:
65 for a compile error, 70 for a runtime error (limits included), 69 when
no engine handles the file, 1 for anything else (the codes of Wren's CLI,
from BSD's sysexits).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from .dom import Document
from .errors import CompileError, EngineNotFoundError, ScriptError
from .manager import ScriptManager
from .policy import SecurityPolicy

EXIT_COMPILE = 65
EXIT_RUNTIME = 70
EXIT_NO_ENGINE = 69


def _parse_arg(text: str) -> Any:
    """A --call argument: JSON when it parses (numbers, true, lists...), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _report(exc: ScriptError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    if exc.stack:
        print(exc.format_stack(), file=sys.stderr)
    if isinstance(exc, CompileError):
        return EXIT_COMPILE
    if isinstance(exc, EngineNotFoundError):
        return EXIT_NO_ENGINE
    return EXIT_RUNTIME


def cmd_engines(args: argparse.Namespace) -> int:
    m = ScriptManager(cache=False)
    if not m.languages and not m.broken_plugins:
        print("no engines installed (pip install kryon-lua, kryon-js, kryon-python, kryon-wren or kryon-lisp)")
        return 0
    rows = []
    for lang, spec in sorted(m.engine_specs.items()):
        try:
            engine = m.engine(lang)
            caps = [k.removeprefix("supports_") for k, v in engine.capabilities.as_dict().items() if v]
            version = engine.version
        except Exception as exc:  # a broken engine is reported, the others still listed
            caps, version = [f"unavailable: {exc}"], "?"
        rows.append((lang, spec.distribution or "(in-process)", spec.version or "", version, ", ".join(caps)))
    for name, why in sorted(m.broken_plugins.items()):
        rows.append((name, "(failed to load)", "", "?", why))
    if args.json:
        keys = ("language", "distribution", "distribution_version", "engine_version", "capabilities")
        print(json.dumps([dict(zip(keys, r)) for r in rows], indent=2))
        return 0
    widths = [max(len(str(r[i])) for r in rows + [("language", "distribution", "version", "engine", "")]) for i in range(4)]
    print(f"{'language':{widths[0]}}  {'distribution':{widths[1]}}  {'version':{widths[2]}}  {'engine':{widths[3]}}  capabilities")
    for r in rows:
        print(f"{r[0]:{widths[0]}}  {r[1]:{widths[1]}}  {r[2]:{widths[2]}}  {r[3]:{widths[3]}}  {r[4]}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    target = Path(args.path)
    if target.is_dir():
        from .app import run_app

        return run_app(target, watch=args.watch, sandboxed=args.sandbox)
    policy = SecurityPolicy.sandboxed() if args.sandbox else SecurityPolicy.trusted()
    m = ScriptManager(policy=policy)
    doc = m.setup_dom_bridge(Document(on_log=lambda level, msg: print(msg)))
    try:
        script = m.load_script_file(target)
        if args.call:
            fname, *call_args = args.call
            name = fname if "." in fname else f"{script}.{fname}"
            result = m.call_function(name, [_parse_arg(a) for a in call_args])
            if result is not None:
                print(json.dumps(result, default=repr))
        if args.advance:
            doc.advance(args.advance)
    except ScriptError as exc:
        return _report(exc)
    finally:
        m.close()
    for exc in doc.errors:
        if isinstance(exc, ScriptError):
            return _report(exc)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .serve import serve

    return serve(Path(args.path), host=args.host, port=args.port, play=args.play)


def cmd_debug(args: argparse.Namespace) -> int:
    from .debug.dap import serve_stdio, serve_tcp

    if args.listen:
        host, _, port = args.listen.rpartition(":")
        if not port.isdigit():
            print("error: --listen needs HOST:PORT", file=sys.stderr)
            return 64
        return serve_tcp(host or "127.0.0.1", int(port))
    return serve_stdio()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kryon", description="Run scripts in every installed language.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("engines", help="list installed engines")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_engines)
    p = sub.add_parser("run", help="run a script file (or an app directory)")
    p.add_argument("path", help="script file; the extension picks the language")
    p.add_argument(
        "--call", nargs="+", metavar=("NAME", "ARG"), help="then call NAME with ARGs (JSON values, else strings)"
    )
    p.add_argument("--sandbox", action="store_true", help="run under the default sandboxed policy")
    p.add_argument("--advance", type=float, default=0, metavar="MS", help="then run timers for MS milliseconds")
    p.add_argument("--watch", action="store_true", help="(apps) reload scripts when their files change")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("debug", help="a Debug Adapter Protocol server (stdio, or --listen HOST:PORT)")
    p.add_argument("--listen", metavar="HOST:PORT", help="accept one client on a TCP port instead of stdio")
    p.set_defaults(func=cmd_debug)

    p = sub.add_parser("serve", help="serve an app directory as a live web page on localhost")
    p.add_argument("path", help="app directory (with app.json)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--play", action="store_true", help="play the app's scripted events first")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
