"""The value model: what crosses between the host and the languages.

Values cross as plain Python values: ``None``, ``bool``, ``int``, ``float``,
``str``, ``bytes``, ``list``, ``dict`` with ``str`` keys, plus two handles:
:class:`FunctionRef`, a callable into an engine, and :class:`UserData`, an
opaque host object that comes back unchanged. The rules for the awkward cases
(cycles, NaN, non-string keys, huge integers) live in ``docs/values.md``; the
helpers here are the shared implementation engines use for them.
"""

from __future__ import annotations

import enum
import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ConversionError, SizeLimitError

__all__ = [
    "ScriptLanguage",
    "FunctionRef",
    "UserData",
    "EXTENSIONS",
    "language_for_path",
    "normalize_language",
    "to_host",
    "approximate_size",
    "check_int",
    "SCALAR_TYPES",
    "MAX_SAFE_DOUBLE_INT",
]

#: the largest integer a double holds exactly (JavaScript's Number.MAX_SAFE_INTEGER)
MAX_SAFE_DOUBLE_INT = 2**53
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SCALAR_TYPES = (type(None), bool, int, float, str, bytes)


class ScriptLanguage(str, enum.Enum):
    """The five languages of the specification. Language ids are open
    strings: a third-party engine may add ``"ruby"``; these are just named."""

    LUA = "lua"
    JAVASCRIPT = "javascript"
    PYTHON = "python"
    WREN = "wren"
    KRYON_LISP = "lisp"

    def __str__(self) -> str:  # "lua", not "ScriptLanguage.LUA"
        return self.value


#: file extension -> language id, for ``kryon run`` and ``load_script_file``
EXTENSIONS: dict[str, str] = {
    ".lua": "lua",
    ".js": "javascript",
    ".mjs": "javascript",
    ".py": "python",
    ".wren": "wren",
    ".hy": "lisp",
    ".kl": "lisp",
}


def normalize_language(language: "str | ScriptLanguage") -> str:
    """A language id string from an id or a :class:`ScriptLanguage` member."""
    if isinstance(language, ScriptLanguage):
        return language.value
    lang = str(language).strip().lower()
    aliases = {"js": "javascript", "kryonlisp": "lisp", "kryon-lisp": "lisp", "hy": "lisp", "py": "python"}
    return aliases.get(lang, lang)


def language_for_path(path: str, extensions: dict[str, str] | None = None) -> str | None:
    """The language id a file name's extension maps to, or None."""
    table = extensions if extensions is not None else EXTENSIONS
    dot = path.rfind(".")
    return table.get(path[dot:].lower()) if dot >= 0 else None


class UserData:
    """An opaque host object handed to scripts and handed back unchanged.

    Scripts cannot look inside it; they can store it and pass it back to host
    functions, which get this very instance (identity is preserved)."""

    __slots__ = ("value", "__weakref__")

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"UserData({self.value!r})"

    # handles keep their identity through copies of the structures holding them
    def __copy__(self) -> "UserData":
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> "UserData":
        return self


class FunctionRef:
    """A callable handle to a function living in an engine.

    Calling it runs the function in its own engine with converted arguments
    and returns the converted result. The engine-side reference is released
    when the handle is released explicitly or garbage collected, so scripts
    do not keep each other's closures alive forever. After release (or after
    its script is unloaded) a call raises :class:`~kryon_core.errors.ScriptError`.
    """

    __slots__ = ("_call", "name", "language", "script", "_finalizer", "_async", "_released", "__weakref__")

    def __init__(
        self,
        call: Callable[..., Any],
        *,
        name: str,
        language: str,
        script: str | None = None,
        release: Callable[[], None] | None = None,
        call_async: Callable[..., Any] | None = None,
    ) -> None:
        self._call = call
        self._async = call_async
        self.name = name
        self.language = language
        self.script = script
        self._released = False
        self._finalizer = weakref.finalize(self, release) if release is not None else None

    def __call__(self, *args: Any) -> Any:
        return self._call(*args)

    @classmethod
    def direct(cls, call: Callable[..., Any], **kwargs: Any) -> "FunctionRef":
        """A FunctionRef whose call goes straight to ``call``, with no Python
        frame of its own in between (for bound handles on hot paths).

        It gets a one-off subclass whose ``__call__`` is ``call`` itself, so
        it costs a class object: make these once, not per call."""
        sub = type(cls.__name__, (cls,), {"__slots__": (), "__call__": staticmethod(call)})
        ref: FunctionRef = sub(call, **kwargs)
        return ref

    def _retarget(self, call: Callable[..., Any], call_async: Callable[..., Any] | None) -> None:
        """Point this handle at a new implementation (after a hot reload)."""
        self._call, self._async = call, call_async
        if type(self) is not FunctionRef and "__call__" in type(self).__dict__:
            type(self).__call__ = staticmethod(call)  # type: ignore[method-assign]

    def call(self, args: Iterable[Any] = ()) -> Any:
        """Call with a list of arguments (the manager's calling convention)."""
        return self._call(*args)

    async def call_async(self, *args: Any) -> Any:
        """Await the function: engines with coroutines or promises run it
        cooperatively; others run it to completion."""
        if self._async is not None:
            return await self._async(*args)
        return self._call(*args)

    def release(self) -> None:
        """Free the engine-side reference now (idempotent)."""
        self._retarget(_released(self.name, self.language, self.script), None)
        self._released = True
        if self._finalizer is not None:
            self._finalizer()

    @property
    def alive(self) -> bool:
        return not self._released

    def __copy__(self) -> "FunctionRef":
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> "FunctionRef":
        return self

    def __repr__(self) -> str:
        where = f"{self.script}." if self.script else ""
        return f"<FunctionRef {self.language}:{where}{self.name}>"


class _ReleasedCall:
    def __init__(self, name: str, language: str, script: str | None) -> None:
        self.name, self.language, self.script = name, language, script

    def __call__(self, *args: Any) -> Any:
        from .errors import ScriptRuntimeError

        raise ScriptRuntimeError(
            f"function '{self.name}' was released (its script was unloaded or the reference dropped)",
            language=self.language,
            script=self.script,
        )


def _released(name: str, language: str, script: str | None) -> Callable[..., Any]:
    return _ReleasedCall(name, language, script).__call__


def int_text(value: int) -> str:
    """``value`` as an error message names it: its digits, or its size once it is long
    (CPython's str() of an int past 4,300 digits is a ValueError, no kryon error)."""
    return str(value) if value.bit_length() <= 128 else f"of {value.bit_length()} bits"


def check_int(value: int, *, exact_limit: int | None, language: str, what: str = "integer") -> int:
    """Reject an int the language cannot hold exactly, never rounding silently.

    ``exact_limit`` is 2**53 for languages whose numbers are doubles, None for
    64-bit integer languages (then the int64 range applies)."""
    if exact_limit is None:
        if INT64_MIN <= value <= INT64_MAX:
            return value
        raise ConversionError(f"{what} {int_text(value)} does not fit in a 64-bit integer", language=language)
    if -exact_limit <= value <= exact_limit:
        return value
    raise ConversionError(
        f"{what} {int_text(value)} cannot be represented exactly in {language} (beyond 2**53)", language=language
    )


_LEAVES = (bool, int, float, str, bytes, FunctionRef, UserData)

#: how many elements a converted value may have once shared references are
#: copied: a small structure of shared references (a DAG) would otherwise
#: expand into an exponentially large tree before any size limit could see it
MAX_EXPANDED_ELEMENTS = 10_000_000


def to_host(value: Any, *, language: str = "host", convert: Callable[[Any], Any] | None = None) -> Any:
    """Normalize a Python value to the value model, checking every rule.

    Tuples become lists; dict keys must be ``str`` (an ``int`` key becomes its
    decimal string, any other key is a :class:`ConversionError`); cycles are a
    :class:`ConversionError`; FunctionRef, UserData and callables pass
    through. Any other object goes to ``convert`` (the manager passes the
    ``kryon_convert_value`` hooks), which returns a value or None; without a
    conversion it is a :class:`ConversionError`. Iterative: any nesting depth
    works, and the input is never modified.
    """
    if value is None or isinstance(value, _LEAVES):
        return value
    if _expanded_elements(value, language) > MAX_EXPANDED_ELEMENTS:
        raise ConversionError(
            f"the value would have more than {MAX_EXPANDED_ELEMENTS} elements once its shared references are copied",
            language=language,
        )
    root: list[Any] = [None]
    # work items: (source, container to fill, key in it); containers are filled in place
    work: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while work:
        v, target, key = work.pop()
        if v is None or isinstance(v, _LEAVES):
            target[key] = v
        elif isinstance(v, (list, tuple)):
            out: Any = [None] * len(v)
            target[key] = out
            work.extend((item, out, i) for i, item in enumerate(v))
        elif isinstance(v, dict):
            out = {}
            target[key] = out
            for k, item in v.items():
                k = dict_key(k, language)
                out[k] = None  # keeps the source's key order
                work.append((item, out, k))
        elif callable(v):
            target[key] = v
        else:
            converted = convert(v) if convert is not None else None
            if converted is None:
                raise ConversionError(f"cannot convert a {type(v).__name__} to a script value", language=language)
            if _expanded_elements(converted, language) > MAX_EXPANDED_ELEMENTS:  # a hook's value: same rules
                raise ConversionError("a converted value is too large once its shared references are copied",
                                      language=language)
            work.append((converted, target, key))
    return root[0]


def _expanded_elements(value: Any, language: str) -> int:
    """How many elements ``value`` has with every shared reference copied,
    counted once per distinct container (memoised, iterative): linear in the
    value's real size even when the copy would be exponential. Cycles are a
    ConversionError here already."""
    if not isinstance(value, (list, tuple, dict)):
        return 0
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        v, done = stack.pop()
        key = id(v)
        children = list(v.values()) if isinstance(v, dict) else v
        if done:
            on_path.discard(key)
            size[key] = len(children) + sum(size.get(id(c), 0) for c in children if isinstance(c, (list, tuple, dict)))
            continue
        if key in size:
            continue
        if key in on_path:
            kind = "dict" if isinstance(v, dict) else "list"
            raise ConversionError(f"cyclic {kind} cannot cross between languages", language=language)
        on_path.add(key)
        stack.append((v, True))
        stack.extend((c, False) for c in children if isinstance(c, (list, tuple, dict)) and id(c) not in size)
    return size[id(value)]


#: rough bytes of CPython objects, for quotas: what a value costs the host to keep
_SIZE_OF_SCALAR = 32
_SIZE_OF_STR = 49
_SIZE_OF_LIST, _SIZE_PER_ITEM = 56, 8
_SIZE_OF_DICT, _SIZE_PER_ENTRY = 64, 24


def approximate_size(value: Any) -> int:
    """About how many bytes the host holds for ``value`` (a value-model value),
    counting shared sub-values once. Iterative, so any nesting depth works."""
    total = 0
    seen: set[int] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str:
            total += _SIZE_OF_STR + len(v) * (1 if v.isascii() else 4)
        elif t is bytes:
            total += 33 + len(v)
        elif t is list or t is tuple or t is dict:
            if id(v) in seen:
                continue
            seen.add(id(v))
            if t is dict:
                total += _SIZE_OF_DICT + _SIZE_PER_ENTRY * len(v)
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                total += _SIZE_OF_LIST + _SIZE_PER_ITEM * len(v)
                stack.extend(v)
        else:
            total += _SIZE_OF_SCALAR
    return total


def dict_key(key: Any, language: str, script: str | None = None) -> str:
    """The rule for dict keys: str stays, int becomes its decimal text, the rest
    is an error (naming ``script`` when the caller knows it)."""
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    if isinstance(key, float) and key.is_integer() and not math.isinf(key):
        return str(int(key))
    raise ConversionError(f"dict key {key!r} ({type(key).__name__}) is not a string", language=language, script=script)


def value_too_large(size: int, limit: int, *, kind: str, language: str, script: str | None = None) -> SizeLimitError:
    """The error for a string (``kind`` "string", ``size`` in characters or
    bytes) or a list / map (``size`` in elements) crossing between host and
    script beyond the policy's ``max_value_size``, worded alike by the engines
    that convert in-process (kryon-js measures a list as its JSON text, and the
    isolation worker, which cannot import kryon_core, words its own)."""
    unit = "characters" if kind == "string" else "elements"
    return SizeLimitError(
        f"a {kind} of {size} {unit} crossing between the host and the script is larger than the policy's "
        f"max_value_size ({limit})",
        language=language,
        script=script,
    )
