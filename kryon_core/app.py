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
type or a failing step prints a clear error and the app goes on.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from .dom import Document
from .errors import AccessDeniedError, DOMError, EngineNotFoundError, ScriptError
from .manager import ScriptManager
from .policy import SecurityPolicy

__all__ = ["App", "ELEMENT_TYPES", "run_app"]

#: element types an app's tree may use
ELEMENT_TYPES = frozenset(
    {"app", "panel", "row", "column", "label", "text", "button", "input", "checkbox", "list", "item",
     "chart", "bar", "image", "link", "header", "footer"}
)


@dataclass
class App:
    """A loaded app: its manager, document and what was skipped or failed."""

    directory: Path
    manager: ScriptManager
    document: Document
    config: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    scripts: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        policy: SecurityPolicy | None = None,
        out: TextIO = sys.stdout,
        on_manager: "Callable[[ScriptManager], None] | None" = None,
    ) -> "App":
        """Load the app in ``directory``; ``on_manager`` sees the manager before
        any script loads (``kryon debug`` attaches its debugger there)."""
        config_path = directory / "app.json"
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ScriptError(f"cannot read {config_path.name}: {exc}", script=str(config_path)) from None
        manager = ScriptManager(
            policy=policy or SecurityPolicy.trusted(), output=lambda lang, text: print(f"[{lang}] {text}", file=out)
        )
        if on_manager is not None:
            on_manager(manager)
        app = cls(directory, manager, Document(seed=config.get("seed", 1)), config)
        app.document.on_log = lambda level, msg: print(f"[log:{level}] {msg}", file=out)
        app.document.on_error = lambda exc: app._error(f"callback failed: {exc}")
        manager.setup_dom_bridge(app.document)
        app._build_tree(config.get("tree"))
        for shared in config.get("shared", []):
            manager.shared.create(shared["id"], shared.get("value"))
        for name in config.get("scripts", []):
            app._load_script(name)
        return app

    def _error(self, message: str) -> None:
        self.errors.append(message)

    def _build_tree(self, tree: Any) -> None:
        if tree is None:
            return
        problems: list[DOMError] = []
        for child in tree if isinstance(tree, list) else [tree]:
            self.document.build(child, element_types=ELEMENT_TYPES, errors=problems)
        for exc in problems:
            self._error(f"app tree: {exc.message}")

    def _load_script(self, name: str) -> None:
        path = self.directory / name
        try:
            if not isinstance(name, str) or not path.resolve().is_relative_to(self.directory.resolve()):
                raise AccessDeniedError(f"the script path '{name}' leaves the app's folder")
            language = self.manager.language_for_file(path)
            if language not in self.manager.languages:
                self.skipped.append(f"{name} (no {language} engine installed)")
                return
            self.manager.load_script_file(path, root=self.directory)
            self.scripts[path.stem] = path
        except EngineNotFoundError as exc:
            self.skipped.append(f"{name} ({exc.message})")
        except ScriptError as exc:
            self._error(f"{name}: {exc}")

    def play(self, steps: list[dict[str, Any]] | None = None) -> None:
        """Play the event steps (the app's own when none are given)."""
        for step in steps if steps is not None else self.config.get("events", []):
            try:
                self._step(step)
            except (ScriptError, DOMError) as exc:
                self._error(f"step {json.dumps(step)}: {exc}")

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
            self.manager.hot_reload_script(name, path.read_bytes())
            return True
        except ScriptError as exc:
            self._error(f"reload of {path.name} failed, old version kept: {exc}")
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


def run_app(directory: Path, *, watch: bool = False, sandboxed: bool = False, out: TextIO = sys.stdout) -> int:
    """``kryon run APP``: load, play the events, print the document and statistics."""
    try:
        app = App.load(directory, policy=SecurityPolicy.sandboxed() if sandboxed else None, out=out)
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app.play()
    app.report(out)
    if watch:
        _watch(app, out)
    app.manager.close()
    return 0


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
