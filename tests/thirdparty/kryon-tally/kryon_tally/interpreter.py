"""The Tally evaluator: forms evaluated in a chain of environments.

Special forms::

    (fn name (a b & rest) body...)   define a function in the script
    (lambda (x) body...)             an anonymous function (a closure)
    (def name value)                 set a script-level variable
    (set! name value)                assign the nearest existing binding
    (let ((x 1) (y 2)) body...)      local bindings
    (if c then else) (do ...) (while c body...) (and ...) (or ...)

Anything else is a call: a Tally function, a builtin, or a host callable
(the ``kryon.*`` API, FunctionRefs and callables passed in), whose
arguments and result are converted at the boundary. Tally checks the
argument count of calls made in Tally; calls from the host are lenient
(missing arguments are nil, extra ones dropped), as in Lua and JavaScript,
so any function can be a DOM callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryon_core import RecursionLimitError, ScriptError, StackFrame

from .reader import Form, Sym
from .sandbox import FORBIDDEN, Limits, TallyError

if TYPE_CHECKING:
    from .engine import Script

__all__ = ["Env", "Closure", "Builtin", "Interpreter", "display", "check_syntax"]


class Env:
    __slots__ = ("vars", "parent")

    def __init__(self, vars: dict[str, Any] | None = None, parent: "Env | None" = None) -> None:
        self.vars = vars if vars is not None else {}
        self.parent = parent

    def lookup(self, name: Sym) -> Any:
        env: Env | None = self
        while env is not None:
            if name in env.vars:
                return env.vars[name]
            env = env.parent
        raise TallyError(f"'{name}' is not defined")

    def assign(self, name: Sym, value: Any) -> None:
        env: Env | None = self
        while env is not None:
            if name in env.vars:
                env.vars[name] = value
                return
            env = env.parent
        raise TallyError(f"set! of '{name}', which is not defined (use def)")


class Closure:
    __slots__ = ("name", "params", "rest", "body", "env", "script", "line")

    def __init__(self, name: str, params: list[str], rest: str | None, body: list[Any], env: Env, script: "Script",
                 line: int) -> None:
        self.name, self.params, self.rest, self.body = name, params, rest, body
        self.env, self.script, self.line = env, script, line

    def __repr__(self) -> str:
        return f"<tally function {self.name}>"


class Builtin:
    """A function of the language itself: takes and returns Tally values."""

    __slots__ = ("name", "fn")

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name, self.fn = name, fn

    def __repr__(self) -> str:
        return f"<tally builtin {self.name}>"


class Frame:
    __slots__ = ("function", "script", "env", "line", "col")

    def __init__(self, function: str, script: "Script", env: Env) -> None:
        self.function, self.script, self.env = function, script, env
        self.line: int | None = None
        self.col: int | None = None


SPECIAL = frozenset(("fn", "lambda", "def", "set!", "let", "if", "do", "while", "and", "or"))


def check_syntax(form: Any) -> None:
    """Compile-time checks of special forms (raises TallyError with a line)."""
    if not isinstance(form, Form):
        return
    head = form[0] if form else None
    try:
        if head == "fn":
            _expect(len(form) >= 3 and isinstance(form[1], Sym), "(fn name (params...) body...)")
            _params(form[2])
        elif head == "lambda":
            _expect(len(form) >= 2, "(lambda (params...) body...)")
            _params(form[1])
        elif head in ("def", "set!"):
            _expect(len(form) == 3 and isinstance(form[1], Sym), f"({head} name value)")
        elif head == "let":
            ok = len(form) >= 2 and isinstance(form[1], Form)
            ok = ok and all(isinstance(b, Form) and len(b) == 2 and isinstance(b[0], Sym) for b in form[1])
            _expect(ok, "(let ((name value)...) body...)")
        elif head == "if":
            _expect(len(form) in (3, 4), "(if test then [else])")
        elif head == "while":
            _expect(len(form) >= 2, "(while test body...)")
    except TallyError as exc:
        exc.line, exc.col = form.line, form.col
        raise
    for sub in form:
        check_syntax(sub)


def _expect(ok: bool, shape: str) -> None:
    if not ok:
        raise TallyError(f"malformed special form, expected {shape}")


def _params(spec: Any) -> tuple[list[str], str | None]:
    if not isinstance(spec, Form) or not all(isinstance(p, Sym) for p in spec):
        raise TallyError("parameters must be a list of names")
    names = [str(p) for p in spec]
    if "&" in names:
        i = names.index("&")
        if i != len(names) - 2:
            raise TallyError("'&' must be followed by exactly one rest parameter")
        return names[:i], names[i + 1]
    return names, None


class Interpreter:
    """Evaluates forms for one engine; ``frames`` is the live Tally stack."""

    def __init__(self, root: Env, limits: Limits, to_host: Callable[[Any], Any], to_tally: Callable[[Any], Any],
                 on_line: Callable[[Frame], None] | None = None) -> None:
        self.root = root
        self.limits = limits
        self.to_host, self.to_tally = to_host, to_tally
        self.frames: list[Frame] = []
        self.on_line = on_line  # set while breakpoints exist
        self.output: Callable[[str], None] = print
        root.vars.update(self._builtins())

    # -- evaluation ----------------------------------------------------------
    def eval(self, x: Any, env: Env) -> Any:
        if type(x) is Sym:
            try:
                return env.lookup(x)
            except TallyError as exc:
                raise self._locate(exc, x)
        if type(x) is not Form:
            return x
        frame = self.frames[-1]
        if x.line != frame.line:
            frame.line, frame.col = x.line, x.col
            if self.on_line is not None:
                self.on_line(frame)
        self.limits.step()
        if not x:
            raise self._locate(TallyError("cannot call an empty form ()"), x)
        head = x[0]
        if type(head) is Sym and head in SPECIAL:
            return getattr(self, "_sf_" + head.replace("!", ""))(x, env)
        f = self.eval(head, env)
        args = []
        for a in x[1:]:  # a loop, not a comprehension: one Python frame less per Tally call
            args.append(self.eval(a, env))
        return self.apply(f, args, x)

    def body(self, forms: list[Any], env: Env) -> Any:
        result = None
        for form in forms:
            result = self.eval(form, env)
        return result

    def apply(self, f: Any, args: list[Any], form: Form) -> Any:
        try:
            if type(f) is Closure:
                return self.call(f, args, strict=True)
            if type(f) is Builtin:
                return f.fn(*args)
            if callable(f):  # host: kryon API, FunctionRef, host callable
                return self.to_tally(f(*[self.to_host(a) for a in args]))
            raise TallyError(f"{display(f)} is not a function")
        except TallyError as exc:
            raise self._locate(exc, form)
        except ScriptError as exc:
            if exc.script is None and exc.line is None and self.frames:  # the host's (a DOMError): locate it here
                exc.language = exc.language or "tally"
                exc.script, exc.line, exc.column = self.frames[-1].script.id, form.line, form.col
                exc.stack = self.stack()
            raise  # an error of another script already names its own place
        except RecursionError:
            raise
        except Exception as exc:
            name = form[0] if form and type(form[0]) is Sym else display(f)
            raise self._locate(TallyError(f"{name}: {type(exc).__name__}: {exc}"), form) from None

    def call(self, f: Closure, args: list[Any], *, strict: bool) -> Any:
        n = len(f.params)
        if strict and (len(args) < n or (len(args) > n and f.rest is None)):
            raise TallyError(f"{f.name} takes {n}{'+' if f.rest else ''} arguments, got {len(args)}")
        env = Env(dict(zip(f.params, args, strict=False)), f.env)
        for p in f.params[len(args):]:
            env.vars[p] = None
        if f.rest is not None:
            self.limits.alloc(8 * max(0, len(args) - n))
            env.vars[f.rest] = list(args[n:])
        frame = Frame(f.name, f.script, env)
        self.frames.append(frame)
        try:
            self.limits.depth(len(self.frames))
            result = None
            for form in f.body:
                result = self.eval(form, env)
            return result
        except TallyError as exc:
            if exc.line is None and frame.line is not None:  # raised between forms (a limit): locate it here
                self._locate(exc, frame)
            raise
        except RecursionError:
            raise TallyError("Python's stack ran out (recursion too deep)", RecursionLimitError) from None
        finally:
            self.frames.pop()

    def run_top(self, forms: list[Any], script: "Script") -> None:
        self.frames.append(Frame("<top>", script, script.env))
        try:
            self.body(forms, script.env)
        finally:
            self.frames.pop()

    def _locate(self, exc: TallyError, where: Any) -> TallyError:
        if exc.line is None:
            exc.line, exc.col = getattr(where, "line", None), getattr(where, "col", None)
            if self.frames:
                self.frames[-1].line, self.frames[-1].col = exc.line, exc.col
                exc.script = self.frames[-1].script.id
            exc.stack = self.stack()
        return exc

    def stack(self, with_locals: bool = False) -> list[StackFrame]:
        out = []
        for i, fr in enumerate(reversed(self.frames)):
            local_vars = self.locals(fr) if with_locals and i == 0 else {}
            out.append(StackFrame(fr.function, fr.script.id, fr.line, fr.col, "tally", local_vars))
        return out

    def locals(self, frame: Frame) -> dict[str, Any]:
        found: dict[str, Any] = {}
        env: Env | None = frame.env
        while env is not None and env is not frame.script.env:
            for k, v in env.vars.items():
                if k not in found:
                    try:
                        found[k] = self.to_host(v)
                    except Exception:
                        found[k] = repr(v)
            env = env.parent
        return found

    # -- special forms ---------------------------------------------------------------
    def _closure(self, name: str, params: Any, body: list[Any], env: Env, line: int) -> Closure:
        names, rest = _params(params)
        return Closure(name, names, rest, body, env, self.frames[-1].script, line)

    def _sf_fn(self, x: Form, env: Env) -> Closure:
        f = self._closure(str(x[1]), x[2], x[3:], env, x.line)
        self.frames[-1].script.env.vars[str(x[1])] = f
        return f

    def _sf_lambda(self, x: Form, env: Env) -> Closure:
        return self._closure("<lambda>", x[1], x[2:], env, x.line)

    def _sf_def(self, x: Form, env: Env) -> Any:
        value = self.eval(x[2], env)
        self.frames[-1].script.env.vars[str(x[1])] = value
        return value

    def _sf_set(self, x: Form, env: Env) -> Any:
        value = self.eval(x[2], env)
        try:
            env.assign(x[1], value)
        except TallyError as exc:
            raise self._locate(exc, x)
        return value

    def _sf_let(self, x: Form, env: Env) -> Any:
        inner = Env({}, env)
        for name, value in x[1]:
            inner.vars[str(name)] = self.eval(value, inner)
        frame = self.frames[-1]
        outer, frame.env = frame.env, inner
        try:
            return self.body(x[2:], inner)
        finally:
            frame.env = outer

    def _sf_if(self, x: Form, env: Env) -> Any:
        if truthy(self.eval(x[1], env)):
            return self.eval(x[2], env)
        return self.eval(x[3], env) if len(x) > 3 else None

    def _sf_do(self, x: Form, env: Env) -> Any:
        return self.body(x[1:], env)

    def _sf_while(self, x: Form, env: Env) -> None:
        while truthy(self.eval(x[1], env)):
            self.limits.step()
            self.body(x[2:], env)
        return None

    def _sf_and(self, x: Form, env: Env) -> Any:
        result: Any = True
        for a in x[1:]:
            result = self.eval(a, env)
            if not truthy(result):
                return result
        return result

    def _sf_or(self, x: Form, env: Env) -> Any:
        result = None
        for a in x[1:]:
            result = self.eval(a, env)
            if truthy(result):
                return result
        return result

    # -- builtins ----------------------------------------------------------------------
    def _builtins(self) -> dict[str, Builtin]:
        alloc = self.limits.alloc

        def num(*xs: Any) -> None:
            for v in xs:
                if type(v) not in (int, float):
                    raise TallyError(f"expected a number, got {display(v)}")

        def add(*xs: Any) -> Any:
            num(*xs)
            return sum(xs, 0)

        def sub(a: Any, *xs: Any) -> Any:
            num(a, *xs)
            return -a if not xs else a - sum(xs, 0)

        def mul(*xs: Any) -> Any:
            num(*xs)
            return math.prod(xs)

        def div(a: Any, b: Any) -> Any:
            num(a, b)
            if b == 0:
                raise TallyError("division by zero")
            return a / b

        def mod(a: Any, b: Any) -> Any:
            num(a, b)
            if b == 0:
                raise TallyError("modulo by zero")
            return a % b

        def compare(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
            def cmp(*xs: Any) -> bool:
                return all(op(a, b) for a, b in zip(xs, xs[1:], strict=False))
            return cmp

        def make_list(*xs: Any) -> list[Any]:
            alloc(56 + 8 * len(xs))
            return list(xs)

        def make_dict(*kv: Any) -> dict[Any, Any]:
            if len(kv) % 2:
                raise TallyError("dict needs key value pairs")
            alloc(64 + 48 * len(kv))
            return dict(zip(kv[::2], kv[1::2], strict=False))

        def get(coll: Any, key: Any, default: Any = None) -> Any:
            if type(coll) is list:
                return coll[key] if type(key) is int and -len(coll) <= key < len(coll) else default
            if type(coll) is dict:
                return coll.get(key, default)
            raise TallyError(f"get needs a list or dict, got {display(coll)}")

        def put(coll: Any, key: Any, value: Any) -> Any:
            if type(coll) not in (list, dict):
                raise TallyError(f"put! needs a list or dict, got {display(coll)}")
            alloc(48)
            coll[key] = value
            return coll

        def push(lst: Any, value: Any) -> Any:
            if type(lst) is not list:
                raise TallyError(f"push! needs a list, got {display(lst)}")
            alloc(8)
            lst.append(value)
            return lst

        def to_str(*xs: Any) -> str:
            text = "".join(v if type(v) is str else display(v) for v in xs)
            alloc(49 + len(text))
            return text

        def repeat(text: Any, n: Any) -> str:
            if type(text) is not str or type(n) is not int:
                raise TallyError("repeat takes a string and an integer")
            alloc(49 + len(text) * max(n, 0))
            return text * n

        def emit(*xs: Any) -> None:
            self.output(" ".join(v if type(v) is str else display(v) for v in xs))

        def error(message: Any, value: Any = None) -> None:
            raise TallyError(message if type(message) is str else display(message), value=value)

        def refuse(name: str) -> Callable[..., None]:
            return lambda *_: self.limits.forbidden(name)

        table: dict[str, Callable[..., Any]] = {
            "+": add, "-": sub, "*": mul, "/": div, "mod": mod,
            "=": compare(lambda a, b: same(a, b)), "!=": lambda a, b: not same(a, b),
            "<": compare(lambda a, b: a < b), ">": compare(lambda a, b: a > b),
            "<=": compare(lambda a, b: a <= b), ">=": compare(lambda a, b: a >= b),
            "not": lambda v: not truthy(v), "nil?": lambda v: v is None,
            "list": make_list, "dict": make_dict, "get": get, "put!": put, "push!": push,
            "len": lambda c: len(c), "keys": lambda d: make_list(*d.keys()),
            "str": to_str, "repeat": repeat, "print": emit, "error": error,
            "int": lambda v: int(v), "float": lambda v: float(v), "type-of": type_of,
        }
        table.update({name: refuse(name) for name in FORBIDDEN})
        return {name: Builtin(name, fn) for name, fn in table.items()}


def truthy(v: Any) -> bool:
    return v is not None and v is not False


def same(a: Any, b: Any) -> bool:
    """Tally equality: 1 and 1.0 are equal numbers, true is not 1."""
    if type(a) is bool or type(b) is bool:
        return a is b
    return bool(a == b)


def type_of(v: Any) -> str:
    if v is None:
        return "nil"
    names = {bool: "boolean", int: "int", float: "float", str: "string", list: "list", dict: "dict"}
    if type(v) in names:
        return names[type(v)]
    return "function" if isinstance(v, (Closure, Builtin)) or callable(v) else "userdata"


def display(v: Any) -> str:
    if v is None:
        return "nil"
    if v is True or v is False:
        return "true" if v else "false"
    if type(v) is str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if type(v) is list:
        return " ".join(["(list", *map(display, v)]) + ")"
    if type(v) is dict:
        return " ".join(["(dict", *(f"{display(k)} {display(x)}" for k, x in v.items())]) + ")"
    return str(v)
