"""Apps: a directory with an ``app.json`` describing a UI and its scripts.

``app.json`` holds the element tree (``tree``), the scripts to load in order
(``scripts``: file names; the extension picks the language), and a scripted
sequence of events (``events``) that ``kryon run APP`` plays headlessly:

    {"name": "Todo",
     "tree": {"type": "panel", "id": "main", "children": [...]},
     "scripts": ["model.lua", "view.js"],
     "events": [{"click": "add"}, {"input": ["new-item", "Buy milk"]}, {"advance": 500}]}

Event steps: ``{"click": id}``, ``{"input": [id, text]}`` (sets the element's
``value`` then dispatches "input"), ``{"event": [id, type, data]}``,
``{"advance": ms}``, ``{"call": [name, args...]}``. A script whose language is
not installed is skipped with a note; a missing script, an unknown element
type or a failing step prints a clear error and the app goes on; ``kryon
run APP`` then ends with a non-zero status (see ``kryon_core.cli.exits``).
Errors name the script's file (``model.lua:3:5``), not its id.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .dom import Document
from .errors import AccessDeniedError, CompileError, DOMError, EngineNotFoundError, ScriptError
from .manager import ScriptManager
from .policy import SecurityPolicy
from .sourcefiles import read_source

__all__ = ["App", "Failure", "ELEMENT_TYPES", "run_app"]

#: element types an app's tree may use
ELEMENT_TYPES = frozenset(
    {"app", "panel", "row", "column", "label", "text", "button", "input", "checkbox", "list", "item",
     "chart", "bar", "image", "link", "header", "footer"}
)


#: how many printed or logged lines an app keeps for the inspector
OUTPUT_LINES = 200
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


@dataclass(frozen=True)
class Failure:
    """One thing that went wrong in an app: the message shown, the exit
    status it stands for, and the error itself where there is one."""

    message: str
    status: int
    error: BaseException | None = None
    time: float = field(default_factory=time.time)


@dataclass
class App:
    """A loaded app: its manager, document and what was skipped or failed.

    ``errors`` holds the messages, ``failures`` the same with their exit
    status and error; ``scripts`` maps each loaded script id to its file."""

    directory: Path
    manager: ScriptManager
    document: Document
    config: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    scripts: dict[str, Path] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: the latest lines scripts printed or logged: (time, source, text); source is the language or "log:LEVEL"
    output: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))

    @classmethod
    def load(
        cls, directory: Path, *, policy: SecurityPolicy | None = None, out: TextIO = sys.stdout,
        log_level: int = logging.INFO, plugins: Iterable[Any] = (),
        on_manager: "Callable[[ScriptManager], None] | None" = None,
    ) -> "App":
        """Load ``directory/app.json`` and its scripts; script log lines below
        ``log_level`` are dropped, the others printed to ``out``; ``on_manager``
        sees the manager before any script loads (``kryon debug`` attaches its
        debugger there)."""
        config_path = directory / "app.json"
        try:
            text = read_source(config_path, policy.max_source_size if policy else None).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScriptError(f"cannot read {config_path.name}: {exc}", script=str(config_path)) from None
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CompileError(f"invalid JSON: {exc.msg}", script=str(config_path), line=exc.lineno,
                               column=exc.colno) from None
        if not isinstance(config, dict):
            raise CompileError("app.json must hold a JSON object", script=str(config_path), line=1, column=1)

        def record(source: str, text: str) -> None:
            app.output.append((time.time(), source, text))
            print(f"[{source}] {text}", file=out)

        def log(level: str, text: str) -> None:
            if _LOG_LEVELS.get(level, logging.INFO) >= log_level:
                record(f"log:{level}", text)

        manager = ScriptManager(policy=policy or SecurityPolicy.trusted(), output=record, plugins=plugins)
        if on_manager is not None:
            on_manager(manager)
        app = cls(directory, manager, Document(seed=config.get("seed", 1)), config)
        app.document.on_log = log
        app.document.on_error = lambda exc: app.record_failure("callback failed", exc)
        manager.setup_dom_bridge(app.document)
        app._build_tree(config.get("tree"))
        for shared in config.get("shared", []):
            manager.shared.create(shared["id"], shared.get("value"))
        for name in config.get("scripts", []):
            app._load_script(name)
        return app

    def files(self) -> dict[str, str]:
        """Script id -> the file it came from, for error locations."""
        return {sid: str(path) for sid, path in self.scripts.items()}

    def record_failure(self, context: str, exc: BaseException | None = None, status: int | None = None) -> None:
        """Note a failure: the message (with the error's location and stack
        when ``exc`` is given) and the exit status it stands for."""
        from .cli.exits import SOFTWARE, status_for
        from .cli.report import format_text

        message = f"{context}: {format_text(exc, self.files(), label=None)}" if exc is not None else context
        self.errors.append(message)
        code = status if status is not None else status_for(exc) if exc is not None else SOFTWARE
        self.failures.append(Failure(message, code, exc))

    def exit_status(self) -> int:
        """0 when nothing failed, else the status of the first failure."""
        return self.failures[0].status if self.failures else 0

    def _build_tree(self, tree: Any) -> None:
        if tree is None:
            return
        problems: list[DOMError] = []
        for child in tree if isinstance(tree, list) else [tree]:
            self.document.build(child, element_types=ELEMENT_TYPES, errors=problems)
        from .cli.exits import DATAERR

        for exc in problems:
            self.record_failure(f"app tree: {exc.message}", status=DATAERR)

    def _load_script(self, name: str) -> None:
        from .cli.exits import NOINPUT

        path = self.directory / name
        try:
            if not isinstance(name, str) or not path.resolve().is_relative_to(self.directory.resolve()):
                raise AccessDeniedError(f"the script path '{name}' leaves the app's folder")
            language = self.manager.language_for_file(path)
        except EngineNotFoundError as exc:
            self.skipped.append(f"{name} ({exc.message})")
            return
        except AccessDeniedError as exc:
            self.record_failure(f"loading {name}", exc)
            return
        if language not in self.manager.languages:
            self.skipped.append(f"{name} (no {language} engine installed)")
            return
        if not path.is_file():
            self.record_failure(f"{path}: no such script file (listed in app.json)", status=NOINPUT)
            return
        self.scripts[path.stem] = path  # before loading: a compile error names the file
        try:
            self.manager.load_script_file(path, root=self.directory)
        except EngineNotFoundError as exc:
            del self.scripts[path.stem]
            self.skipped.append(f"{name} ({exc.message})")
        except ScriptError as exc:
            self.record_failure(f"loading {name}", exc)
            del self.scripts[path.stem]

    def play(self, steps: list[dict[str, Any]] | None = None) -> None:
        """Play the event steps (the app's own when none are given)."""
        for step in steps if steps is not None else self.config.get("events", []):
            try:
                self._step(step)
            except (ScriptError, DOMError) as exc:
                self.record_failure(f"step {json.dumps(step)}", exc)

    def _step(self, step: dict[str, Any]) -> None:
        doc = self.document
        if "click" in step:
            doc.click(step["click"])
        elif "input" in step:
            target, text = step["input"]
            doc.set_property(target, "value", text)
            doc.dispatch_event(target, "input", text)
        elif "event" in step:
            target, kind, *data = step["event"]
            doc.dispatch_event(target, kind, data[0] if data else None)
        elif "advance" in step:
            doc.advance(float(step["advance"]))
        elif "call" in step:
            name, *args = step["call"]
            self.manager.call_function(name, args)
        else:
            raise DOMError(f"unknown step {step!r}")

    def reload(self, path: Path) -> bool:
        """Hot-reload the script at ``path``; on failure the old version keeps running."""
        name = path.stem
        if name not in self.scripts:
            return False
        try:
            limit = self.manager.scripts[name].policy.max_source_size
            self.manager.hot_reload_script(name, read_source(path, limit, script=name))
            return True
        except ScriptError as exc:
            self.record_failure(f"reload of {path.name} failed, old version kept", exc)
            return False

    def report(self, out: TextIO = sys.stdout) -> None:
        print("== document", file=out)
        print(self.document.render_text(), file=out)
        if self.document.variables:
            print("== variables", file=out)
            for key, value in sorted(self.document.variables.items()):
                print(f"  {key} = {json.dumps(value, default=repr)}", file=out)
        print("== engines", file=out)
        for lang, stats in sorted(self.manager.statistics()["engines"].items()):
            print(
                f"  {lang:10s} {stats['version']}: scripts {', '.join(stats['scripts']) or '-'}; "
                f"{stats['calls']} calls; {stats['memory_bytes'] // 1024} KiB",
                file=out,
            )
        for note in self.skipped:
            print(f"  skipped: {note}", file=out)
        for message in self.errors:
            print(f"error: {message}", file=sys.stderr)
        if self.errors:
            print(f"== {len(self.errors)} error(s); see above", file=out)


def run_app(
    directory: Path, *, watch: bool = False, policy: SecurityPolicy | None = None, out: TextIO = sys.stdout,
    sandboxed: bool = False, log_level: int = logging.INFO, plugins: Iterable[Any] = (),
) -> int:
    """``kryon run APP``: load, play the events, print the document and
    statistics; returns the exit status (non-zero when anything failed)."""
    from .cli.report import print_error

    if policy is None and sandboxed:
        policy = SecurityPolicy.sandboxed()
    try:
        app = App.load(directory, policy=policy, out=out, log_level=log_level, plugins=plugins)
    except ScriptError as exc:
        return print_error(exc)
    app.play()
    app.report(out)
    status = app.exit_status()
    if watch:
        _watch(app, out)
    app.manager.close()
    return status


def _watch(app: App, out: TextIO, stop: Callable[[], bool] | None = None) -> None:
    from watchfiles import watch

    print(f"watching {app.directory} for changes (Ctrl-C stops)", file=out)
    for changes in watch(app.directory):
        for _, changed in changes:
            path = Path(changed)
            if app.reload(path):
                print(f"reloaded {path.name}", file=out)
                print(app.document.render_text(), file=out)
            for message in app.errors:
                print(f"error: {message}", file=sys.stderr, flush=True)
            app.errors.clear()
            out.flush()
        if stop is not None and stop():
            return
