"""``kryon debug``: a Debug Adapter Protocol server for editors, on stdio or a TCP port.

Needs the ``debug`` extra (``pip install "kryon-core[debug]"``, for dap-types).
"""

from __future__ import annotations

import argparse
from typing import Any

from . import exits
from .exits import CommandError

__all__ = ["add_parser", "cmd_debug"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("debug", parents=parents, help="a Debug Adapter Protocol server (stdio, or --listen HOST:PORT)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--listen", metavar="HOST:PORT", help="accept one client on a TCP port instead of stdio")
    p.set_defaults(func=cmd_debug)


def cmd_debug(args: argparse.Namespace) -> int:
    try:
        from ..debug.dap import serve_stdio, serve_tcp
    except ImportError as exc:
        raise CommandError(f"kryon debug needs the debug extra: pip install 'kryon-core[debug]' ({exc})",
                           exits.UNAVAILABLE) from None
    if args.listen is None:
        return serve_stdio()
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        raise CommandError(f"--listen {args.listen}: give HOST:PORT (for example 127.0.0.1:4711)", exits.USAGE)
    try:
        return serve_tcp(host or "127.0.0.1", int(port))
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.listen}: {exc.strerror}", exits.UNAVAILABLE) from None
