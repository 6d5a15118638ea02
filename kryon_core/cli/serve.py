"""``kryon serve APP``: the app as a live page on localhost, with an inspector."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path
from typing import Any

from . import exits
from .exits import CommandError
from .options import policy_from

__all__ = ["add_parser", "cmd_serve"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", parents=parents, help="serve an app directory as a live web page on localhost")
    p.add_argument("path", help="app directory (with app.json)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--play", action="store_true", help="play the app's scripted events first")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve import serve

    directory = Path(args.path)
    if not directory.is_dir():
        raise CommandError(f"{args.path}: no such directory", exits.NOINPUT)
    if not (directory / "app.json").is_file():
        raise CommandError(
            f"{args.path}: not an app: no app.json in it (an app directory holds app.json and its scripts; "
            "see examples/todo)", exits.NOINPUT)
    policy = policy_from(args)
    try:
        return serve(directory, host=args.host, port=args.port, play=args.play, policy=policy,
                     plugins=args.plugins)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {args.port} on {args.host} is in use: pick another with --port N "
                               "(--port 0 picks a free one)", exits.UNAVAILABLE) from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", exits.UNAVAILABLE) from None
        raise
