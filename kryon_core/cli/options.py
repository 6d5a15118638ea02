"""Options several commands share: output format, logging, and the policy.

``--json`` and ``--log-level`` are accepted before or after the command
name (``kryon --json run x.lua`` and ``kryon run x.lua --json``); the
policy options (``--sandbox``, ``--time-limit``, ``--memory-limit``) belong
to the commands that run scripts.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from ..policy import SecurityPolicy
from . import exits
from .exits import CommandError

__all__ = ["common_options", "policy_options", "policy_from", "configure_logging", "parse_size", "load_plugins",
           "LOG_LEVELS"]

LOG_LEVELS = ("debug", "info", "warning", "error")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes. Sub-commands get them with
    ``suppress`` so a value given before the command name is not reset."""
    default = argparse.SUPPRESS if suppress else None
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="machine-readable output; an error is one JSON object on stderr")
    parent.add_argument("--log-level", choices=LOG_LEVELS, default=default, type=str.lower,
                        help="what Kryon and the scripts' kryon.log report (default: info, or $KRYON_LOG_LEVEL)")
    parent.add_argument("--plugin", action="append", metavar="MODULE", dest="plugin",
                        default=argparse.SUPPRESS if suppress else [],
                        help="also load this pluggy plugin module (MODULE or MODULE:NAME), for one "
                             "not installed yet; repeatable; $KRYON_PLUGINS takes a comma-separated list")
    return parent


def load_plugins(names: list[str]) -> list[object]:
    """The plugin objects named by ``--plugin`` and ``$KRYON_PLUGINS``."""
    import importlib

    wanted = [n.strip() for n in os.environ.get("KRYON_PLUGINS", "").split(",") if n.strip()] + list(names)
    plugins = []
    for name in wanted:
        module_name, _, attr = name.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise CommandError(f"--plugin {name}: cannot load it: {type(exc).__name__}: {exc}",
                               exits.UNAVAILABLE) from None
        plugins.append(obj)
    return plugins


def policy_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--sandbox", action="store_true",
                        help="run under the sandboxed policy (no files, network, processes; limits)")
    parent.add_argument("--time-limit", type=float, metavar="SECONDS",
                        help="(with --sandbox) seconds a call or the top level may take (default 5)")
    parent.add_argument("--memory-limit", type=parse_size, metavar="SIZE",
                        help="(with --sandbox) memory per engine or script: bytes, or with K, M, G (default 256M)")
    return parent


def parse_size(text: str) -> int:
    """``"64M"`` -> 67108864; plain numbers are bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use bytes, or a number with K, M or G)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()[:1]])


def policy_from(args: argparse.Namespace) -> SecurityPolicy:
    """The policy a run uses: trusted (the user's own files, like ``python
    file.py``) unless ``--sandbox``; the limit options tune the sandbox."""
    limits = {}
    if getattr(args, "time_limit", None) is not None:
        limits["time_limit"] = args.time_limit
    if getattr(args, "memory_limit", None) is not None:
        limits["memory_limit"] = args.memory_limit
    if not getattr(args, "sandbox", False):
        if limits:
            given = " and ".join("--" + k.replace("_", "-") for k in limits)
            raise CommandError(f"{given} applies to sandboxed runs: add --sandbox", exits.USAGE)
        return SecurityPolicy.trusted()
    for name, value in limits.items():
        if value <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be greater than 0", exits.USAGE)
    return SecurityPolicy.sandboxed(**limits)


def configure_logging(level_name: str | None) -> int:
    """Send Kryon's log to stderr at the chosen level; returns the level."""
    name = (level_name or os.environ.get("KRYON_LOG_LEVEL") or "info").lower()
    if name not in LOG_LEVELS:
        raise CommandError(f"KRYON_LOG_LEVEL={name!r} is not one of {', '.join(LOG_LEVELS)}", exits.USAGE)
    level: int = getattr(logging, name.upper())
    logger = logging.getLogger("kryon")
    logger.setLevel(level)
    if not any(getattr(h, "kryon_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("kryon: %(levelname)s: %(name)s: %(message)s"))
        handler.kryon_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    return level
