"""The ``kryon`` module every Wren script can import.

``import "kryon" for Kryon`` gives the camelCase API of :data:`kryon_core.API`
as static foreign methods of class ``Kryon``: Wren methods have fixed
arities, so each API method gets one signature per arity it accepts
(``Kryon.setStyle(el, name)`` and ``Kryon.setStyle(el, name, value)``).

``Kryon.call``: ``call(name)`` calls with no arguments; ``call(name, args)``
spreads ``args`` when it is a List (to pass one List argument, wrap it:
``call(name, [list])``) and otherwise passes it as the one argument;
``call(name, a, b)`` up to eight arguments pass them as given.
``Kryon.global(name)`` reads an engine global (``ScriptEngine.set_global``).
Plugin functions (``ScriptBridge.add_function``) get arities 0..8.

The same module holds the classes the engine uses to carry host values:
``HostRef`` (an opaque host object) and ``HostFn`` (a host callable with
``call(...)`` methods, so Wren code calls it like a Fn). Scripts cannot make
or subclass them: only the host makes their instances.

``import "io" for File`` gives ``File.read(path)`` and
``File.exists(path)``: allowed only when the script's policy grants the file
system (AccessDeniedError otherwise).
"""

from __future__ import annotations

from kryon_core import API

from .values import MAX_HOST_ARITY

VARIADIC_EXTRA = MAX_HOST_ARITY


def _params(n: int) -> str:
    return ", ".join(f"a{i}" for i in range(n))


def bars(params: str) -> str:
    """A Wren block's parameter list (``|a0, a1|``) for ``params``, nothing for none."""
    return f"|{params}|" if params else ""


def api_signatures(extra_names: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    """(camel name, arity) of every foreign method of class Kryon."""
    out: list[tuple[str, int]] = []
    for m in API:
        lo, hi = m.arity
        if hi < 0:
            hi = lo + VARIADIC_EXTRA
        out += [(m.camel, n) for n in range(lo, hi + 1)]
    for name in extra_names:
        if name.isidentifier() and not any(name == m.camel for m in API):
            out += [(name, n) for n in range(0, VARIADIC_EXTRA + 1)]
    return out


def kryon_module_source(extra_names: tuple[str, ...] = ()) -> str:
    lines = ["class Kryon {"]
    for name, n in api_signatures(extra_names):
        lines.append(f"  foreign static {name}({_params(n)})")
    lines.append("  foreign static global(name)")
    lines.append("}")
    # No constructor: only the host makes instances (wren_new_host_object),
    # and the classes are sealed once named (wren_set_host_classes), so a
    # script holds exactly the host objects it was handed
    lines.append("class HostRef {")
    lines.append("  hostId { _id }")
    lines.append('  toString { "HostRef(%(_id))" }')
    lines.append("}")
    lines.append("class HostFn {")
    lines.append("  hostId { _id }")
    for n in range(MAX_HOST_ARITY + 1):
        lines.append(f"  call({_params(n)}) {{ KryonHost.invoke(this, [{_params(n)}]) }}")
    lines.append('  toString { "HostFn(%(_id))" }')
    lines.append("}")
    lines.append(
        """class KryonHost {
  foreign static invoke(fn, args)
  static arityOf(x) { x is Fn ? x.arity : -1 }
  static prep(f, a) {
    __f = f
    __a = a
  }
  static go() {
    var f = __f
    var a = __a
    __f = null
    __a = null
    return apply(f, a)
  }
  static apply(f, a) {
    var n = a.count
    if (n == 0) return f.call()
    if (n == 1) return f.call(a[0])
    if (n == 2) return f.call(a[0], a[1])
    if (n == 3) return f.call(a[0], a[1], a[2])
    if (n == 4) return f.call(a[0], a[1], a[2], a[3])
    if (n == 5) return f.call(a[0], a[1], a[2], a[3], a[4])
    if (n == 6) return f.call(a[0], a[1], a[2], a[3], a[4], a[5])
    if (n == 7) return f.call(a[0], a[1], a[2], a[3], a[4], a[5], a[6])
    if (n == 8) return f.call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    Fiber.abort("too many arguments")
  }
  static evalResult=(value) { __e = value }
  static takeEval() {
    var value = __e
    __e = null
    return value
  }
  static stepGo() {
    var fiber = __f
    __f = null
    var value = fiber.call()
    return [fiber.isDone, value]
  }
}"""
    )
    return "\n".join(lines) + "\n"


IO_SOURCE = """class File {
  foreign static read(path)
  foreign static exists(path)
}
"""

#: loads the VM's own optional modules (csrc/opt_modules.c) in a module of
#: the engine's (a ``#`` name: hidden in traces)
BUILTINS_MODULE = ("kryon#builtins", 'import "random"\nimport "meta"\n')


def script_prelude(extra_names: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """The modules every script's VM is set up with: ``kryon``, and the
    modules a script may import that need no host (``io`` and the VM's
    ``random`` and ``meta``). They are compiled with the set-up, so the VM
    image (snapshot.py) holds them and a warm load that imports them runs
    no compiler; a script's import of one of them then just binds names."""
    return (("kryon", kryon_module_source(extra_names)), ("io", IO_SOURCE), BUILTINS_MODULE)

