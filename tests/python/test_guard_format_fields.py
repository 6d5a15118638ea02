"""``str.format`` reads attributes named in its format string (``"{0.__globals__}"``)
with no attribute expression in the source. Sandboxed Python checks every read of
an attribute named ``format`` (the guard rewrites ``x.format`` into a checked
read; ``getattr`` hands back the same checked function), and the other routes
that read or write attributes by a name that is data (``string.Formatter``
subclasses, ``collections.UserString``, ``functools.update_wrapper``, ``copy``'s
slot state, a ``str`` subclass as the name given to ``getattr``, class patterns
with ``format`` or with positional sub-patterns, augmented assignment) obey the
guard's attribute rule. Cached code holding a raw read of ``format`` is compiled
from source; code the host compiled for the sandbox loads warm."""

import marshal

import pytest

from kryon_core import AccessDeniedError, ScriptManager, ScriptRuntimeError, SecurityPolicy
from kryon_core.isolation import guard, scriptenv

#: each an expression formatting a function whose globals hold the real builtins
#: module (kryon.call's); every one read '__globals__' (or '__class__') before
REFUSED = {
    "bound": "'{0.__globals__}'.format(kryon.call)",
    "keyword": "'{f.__globals__}'.format(f=kryon.call)",
    "auto-number": "'{.__globals__}'.format(kryon.call)",
    "after an item": "'{0[0].__globals__}'.format([kryon.call])",
    "chained": "'{0.__init__.__globals__[x]}'.format(kryon.call)",
    "nested spec": "'{0:{1.__class__}}'.format(1, kryon.call)",
    "nested twice": "'{0:{1:{2.__class__}}}'.format(1, 2, kryon.call)",
    "with a conversion": "'{0.__globals__!r:>5}'.format(kryon.call)",
    "private": "'{0._secret}'.format(kryon)",
    "frame attribute": "'{0.gi_frame}'.format((i for i in ()))",
    "unbound": "str.format('{0.__globals__}', kryon.call)",
    "type of a string": "type('').format('{0.__globals__}', kryon.call)",
    "stored first": "(lambda m: m(kryon.call))('{0.__globals__}'.format)",
    "getattr bound": "getattr('{0.__globals__}', 'format')(kryon.call)",
    "getattr unbound": "getattr(str, 'format')('{0.__globals__}', kryon.call)",
    "getattr default": "getattr('{0.__globals__}', 'nothing', str.format)('{0.__globals__}', kryon.call)",
    "str subclass": "S('{0.__globals__}').format(kryon.call)",
    "str subclass unbound": "S.format(S('{0.__globals__}'), kryon.call)",
    "super": "S('{0.__globals__}').parent(kryon.call)",
    "map": "list(map(str.format, ['{0.__globals__}'], [kryon.call]))",
    "partial": "functools.partial(str.format, '{0.__globals__}')(kryon.call)",
    "reduce over getattr": "functools.reduce(getattr, ['format'], '{0.__globals__}')(kryon.call)",
    "UserString": "collections.UserString('{0.__globals__}').format(kryon.call)",
    "Formatter": "string.Formatter().format('{0.__globals__}', kryon.call)",
    "Formatter subclass": "F().format('{0.__globals__}', kryon.call)",
    "update_wrapper updated": "functools.update_wrapper(W(), kryon.call, assigned=(), updated=('__globals__',))",
    "update_wrapper assigned": "functools.update_wrapper(W(), kryon.call, assigned=('__globals__',), updated=())",
    "wraps": "functools.wraps(kryon.call, assigned=('__code__',))(lambda: 0)",
}

PRELUDE = (
    "import kryon, functools, collections, string\n"
    "class S(str):\n"
    "    def parent(self, *a):\n"
    "        return super().format(*a)\n"
    "class F(string.Formatter):\n"
    "    def get_field(self, name, args, kwargs):\n"
    "        return string.Formatter.get_field(self, name, args, kwargs)\n"
    "    def parent(self, *a):\n"
    "        return super(string.Formatter, self).get_field(*a)\n"
    "class C:\n"
    "    def update(self, d):\n"
    "        STASH.append(d)\n"
    "class W:\n"
    "    def __getattr__(self, name):\n"
    "        return C()\n"
    "STASH = []\n"
)
LINE = PRELUDE.count("\n") + 2  # the line of the attack inside f
#: where the refused read runs when it is not f's own line: a method of the prelude
LINES = {"super": 4, "Formatter subclass": 7}


def _script(expression: str) -> str:
    return PRELUDE + f"def f():\n    return {expression}\n"


@pytest.fixture(scope="module")
def manager():
    with ScriptManager(policy=SecurityPolicy.sandboxed(), cache=False) as m:
        yield m


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_format_field_reading_a_refused_attribute_is_refused_when_it_runs(manager, name):
    script = "v" + str(list(REFUSED).index(name))
    manager.load_script_from_source(script, "python", _script(REFUSED[name]))
    with pytest.raises(AccessDeniedError) as info:
        manager.call_function(f"{script}.f")
    assert "access to the attribute" in info.value.message  # the guard's refusal, not a deeper layer's
    assert (info.value.script, info.value.line, info.value.language) == (script, LINES.get(name, LINE), "python")


ALLOWED = {
    "'{0.real} {x[1]} {1.__name__}'.format(2.5, f, x=[7, 8])": "2.5 8 f",
    "'{0:>{1}}|{2}'.format('a', 3, 'b')": "  a|b",
    "'{} {}'.format(1, 2)": "1 2",
    "str.format('{0.imag}', 1.5)": "0.0",
    "getattr('{}!', 'format')(3)": "3!",
    "S('<{}>').format(1)": "<1>",
    "S('<{}>').parent(2)": "<2>",
    "Own().format('x')": "own x",
    "f'{1 + 1} {\"a\"!r}'": "2 'a'",
    "'%(k)s-%(k)r' % {'k': 1}": "1-1",
    "format(3.14159, '.2f')": "3.14",
    "collections.UserString('{0.real}').format(4)": "4",
    "string.Formatter().format('{0.real}{x}', 5, x='!')": "5!",
    "Fine().format('{0.real}', 6)": "6",
    "functools.wraps(f)(lambda: 0).__name__": "f",
    "functools.update_wrapper(lambda: 0, f).__doc__": "doc",
    "list(map(str.format, ['{}{}'], ['a'], ['b']))": ["ab"],
    "'{0.__name__}'.format(f)": "f",
}

ALLOWED_PRELUDE = (
    "class Own:\n"
    "    def format(self, x):\n"
    "        return 'own ' + x\n"
    "class Fine(string.Formatter):\n"
    "    pass\n"
)


def test_ordinary_formatting_still_works(manager):
    body = "".join(f"        {e},\n" for e in ALLOWED)
    manager.load_script_from_source("fine", "python", PRELUDE + ALLOWED_PRELUDE + (
        f"def f():\n    'doc'\n    return [\n{body}    ]\n"))
    got = manager.call_function("fine.f")
    for (expression, expected), value in zip(ALLOWED.items(), got, strict=True):
        assert value == expected, expression


def test_string_formatter_has_no_unchecked_base(manager):
    """The checked ``string.Formatter`` is a copy, not a subclass: ``super()``
    past it finds no ``get_field`` (it reached the unchecked one before)."""
    manager.load_script_from_source("fsuper", "python", _script("F().parent('0.__globals__', (kryon.call,), {})"))
    with pytest.raises(ScriptRuntimeError) as info:
        manager.call_function("fsuper.f")
    assert "get_field" in info.value.message


def test_refusals_at_load_name_the_line(manager):
    for script, source, line in (
        ("aug", "def f(s, r):\n    s.format += r\n", 2),
        ("pattern", "def f(s):\n    match s:\n        case str(format=m): return m\n", 3),
        ("pattern2", "def f(s):\n    match s:\n        case [str(real=r, format=m)]: return m\n", 3),
    ):
        with pytest.raises(AccessDeniedError) as info:
            manager.load_script_from_source(script, "python", source)
        assert info.value.line == line and info.value.script == script, script
        assert script not in manager.scripts


def test_the_reader_cannot_be_rebound_by_name(manager):
    with pytest.raises(AccessDeniedError):
        manager.load_script_from_source("rebind", "python", f"{guard.FORMAT_READER} = lambda o: o\n")
    manager.load_script_from_source("after", "python", "def f():\n    return '{}'.format(1)\n")
    assert manager.call_function("after.f") == "1"


def test_the_worker_is_fine_after_a_refusal(manager):
    manager.load_script_from_source("again", "python", _script(REFUSED["bound"]))
    for _ in range(3):
        with pytest.raises(AccessDeniedError):
            manager.call_function("again.f")
    manager.load_script_from_source("other", "python", "def f(x):\n    return '{0.real}'.format(x)\n")
    assert manager.call_function("other.f", [3]) == "3"


def test_a_check_of_a_template_is_not_fooled_by_a_string_subclass(manager):
    """The checked templates are remembered by exact type and value: a str
    subclass equal to every string never matches one checked before."""
    manager.load_script_from_source("eq", "python", PRELUDE + (
        "class E(str):\n    def __eq__(self, o):\n        return True\n    def __hash__(self):\n        return hash('{}')\n"
        "def f():\n    '{}'.format(1)\n    return E('{0.__globals__}').format(kryon.call)\n"))
    with pytest.raises(AccessDeniedError):
        manager.call_function("eq.f")


def test_no_safe_module_holds_the_raw_method():
    """The rewrite covers reads named ``format``: no module a script may import
    without a grant holds ``str.format`` (bound or not) under another name."""
    import types

    raw = vars(str)["format"]
    proxies = scriptenv.proxy_modules(guard.attribute_allowed)
    for name, proxy in proxies.items():
        for attr, value in vars(proxy).items():
            values = [value] + (list(vars(value).values()) if isinstance(value, type) else [])
            for v in values:
                assert v is not raw, (name, attr)
                assert not (type(v) is types.BuiltinMethodType and isinstance(getattr(v, "__self__", None), str)), (
                    name, attr)


# -- cached code ---------------------------------------------------------------------------
def test_check_code_refuses_a_raw_read_of_format_and_passes_the_rewrite():
    import ast

    source = "def f(x):\n    return '{}'.format(x) + str.format('{}', x)\n"
    raw = compile(source, "s", "exec")
    with pytest.raises(guard.GuardViolation):
        guard.check_code(marshal.loads(marshal.dumps(raw)))
    tree = ast.parse(source)
    guard.rewrite_format_reads(tree)
    rewritten = compile(tree, "s", "exec")
    guard.check_code(rewritten)
    assert guard.reads_checked(rewritten) and not guard.reads_checked(raw)
    aug = compile("def f(s, r):\n    s.format += r\n", "s", "exec")
    with pytest.raises(guard.GuardViolation):
        guard.check_code(aug)
    with pytest.raises(guard.GuardViolation):
        guard.check_code(compile("def f(s):\n    match s:\n        case str(format=m): return m\n", "s", "exec"))
    guard.check_code(compile("x.format = 1\ndel x.format\n", "s", "exec"))  # writes read nothing


def test_a_warm_sandboxed_load_of_format_code_skips_the_compiler(tmp_path):
    source = "def f(x):\n    return '{0.real}|{y}'.format(x, y=1) + str.format('{}', 2)\n"
    attack = "import kryon\ndef f():\n    return '{0.__globals__}'.format(kryon.call)\n"
    policy = SecurityPolicy.sandboxed(time_limit=5)
    with ScriptManager(cache_dir=tmp_path, policy=policy) as m:
        m.load_script_from_source("cold", "python", source)
        m.load_script_from_source("cold_attack", "python", attack)
    with ScriptManager(cache_dir=tmp_path, policy=policy) as m:  # a fresh host, the disk cache
        m.load_script_from_source("warm", "python", source)
        m.load_script_from_source("warm_attack", "python", attack)
        runtime = m.engine("python").runtime
        assert m.scripts["warm"].compiled.from_cache
        assert runtime.worker_info("warm")["compiled_from"] == "bytecode"
        assert runtime.worker_info("warm_attack")["compiled_from"] == "bytecode"
        assert m.call_function("warm.f", [1.5]) == "1.5|12"
        with pytest.raises(AccessDeniedError) as info:
            m.call_function("warm_attack.f")
        assert info.value.line == 3 and info.value.script == "warm_attack"


def test_code_a_trusted_compile_cached_is_compiled_from_source_in_the_worker():
    """One in-memory cache for both: the trusted compile's raw read is refused
    by the worker's check and the source compiled (and rewritten) instead; the
    sandbox's compile, cached, runs in a trusted load as Python's own."""
    attack = "import kryon\ndef f():\n    return '{0.__globals__}'.format(kryon.call)[:1]\n"
    plain = "def f(x):\n    return '{0.real}'.format(x)\n"
    with ScriptManager(cache_dir=False) as m:
        m.load_script_from_source("t", "python", attack, policy=SecurityPolicy.trusted())
        assert m.call_function("t.f") == "{"
        m.load_script_from_source("s", "python", attack, policy=SecurityPolicy.sandboxed(time_limit=5))
        assert m.engine("python").runtime.worker_info("s")["compiled_from"] == "source"
        with pytest.raises(AccessDeniedError):
            m.call_function("s.f")
        m.load_script_from_source("s2", "python", plain, policy=SecurityPolicy.sandboxed(time_limit=5))
        m.load_script_from_source("t2", "python", plain, policy=SecurityPolicy.trusted())
        assert m.scripts["t2"].compiled.from_cache
        assert m.call_function("t2.f", [2]) == "2" and m.call_function("s2.f", [2]) == "2"


def test_the_reader_is_a_builtin_of_the_unguarded_worker_too():
    """With the Python layers off (a test switch), code cached for the sandbox
    still runs: the reader hands back the attribute as it is."""
    b = scriptenv.make_builtins({}, kryon=scriptenv.make_kryon_module({}, lambda m, a: None), proxies={},
                                engine_globals={}, attribute_allowed=guard.attribute_allowed, curated=False)
    assert b[guard.FORMAT_READER]("{0.real}")(2) == "2"
    assert scriptenv.FORMAT_READER == guard.FORMAT_READER


#: a name that answers the rule's questions wrongly: Python's lookup uses its string
SLY = ("class N(str):\n    def startswith(self, *a):\n        return False\n"
       "    def __eq__(self, other):\n        return other == '__dict__'\n    def __hash__(self):\n        return hash('__dict__')\n")


@pytest.mark.parametrize("expression", [
    "getattr(kryon.call, N('__globals__'))",
    "getattr(kryon.call, N('_secret'), None)",
    "setattr(C(), N('__class__'), W)",
    "delattr(C(), N('__dict__'))",
    "functools.update_wrapper(W(), kryon.call, assigned=(), updated=(N('__globals__'),))",
    "functools.wraps(kryon.call, assigned=[N('__code__')])(lambda: 0)",
])
def test_a_str_subclass_as_the_name_is_judged_by_its_string(manager, expression):
    script = "sly" + str(abs(hash(expression)) % 10**6)
    manager.load_script_from_source(script, "python", PRELUDE + SLY + f"def f():\n    return {expression}\n")
    with pytest.raises(AccessDeniedError) as info:
        manager.call_function(f"{script}.f")
    assert "attribute" in info.value.message and info.value.line == LINE + SLY.count("\n")


def test_hasattr_with_such_a_name_answers_false(manager):
    manager.load_script_from_source("slyhas", "python", PRELUDE + SLY + (
        "def f():\n    return [hasattr(kryon.call, N('__globals__')), hasattr(kryon.call, N('__name__'))]\n"))
    assert manager.call_function("slyhas.f") == [False, True]


def test_copy_sets_slot_state_through_the_scripts_setattr(manager):
    """A reduce value's slot state is set by name: ``copy``/``deepcopy`` set it
    with the script's ``setattr`` (Python's set ``__class__`` by a name that was data)."""
    reduce = ("class B:\n    pass\nclass Y:\n    pass\nclass X:\n    def __reduce__(self):\n"
              "        return (B, (), (None, {'__class__': Y}))\n")
    for call in ("copy.copy(X())", "copy.deepcopy([X()])", "copy.deepcopy({'k': (X(),)})"):
        script = "cp" + str(abs(hash(call)) % 10**6)
        manager.load_script_from_source(script, "python", "import copy\n" + reduce + f"def f():\n    return {call}\n")
        with pytest.raises(AccessDeniedError) as info:
            manager.call_function(f"{script}.f")
        assert "'__class__'" in info.value.message, call
    manager.load_script_from_source("cpok", "python", (
        "import copy\nclass P:\n    def __init__(self):\n        self._x = [1]\n        self.y = {'a': [2]}\n"
        "    def x(self):\n        return self._x\n"
        "Q = type('Q', (), {'__slots__': ('a',)})\n"
        "def f():\n    p = P()\n    c, d = copy.copy(p), copy.deepcopy([p, p])\n    q = Q()\n    q.a = 3\n"
        "    return [c.x() is p.x(), d[0] is d[1], d[0].x() == [1] and d[0].x() is not p.x(), d[0].y, copy.copy(q).a]\n"))
    assert manager.call_function("cpok.f") == [True, True, True, {"a": [2]}, 3]


def test_a_malformed_template_fails_when_called_as_pythons_does(manager):
    manager.load_script_from_source("bad", "python", (
        "def f(t):\n    m = t.format\n    try:\n        m(1)\n    except ValueError as e:\n        return 'ValueError'\n"
        "    return 'formatted'\n"))
    for template in ("{", "{0!x}", "}", "{0.}"):
        assert manager.call_function("bad.f", [template]) == "ValueError", template
    assert manager.call_function("bad.f", ["{0}"]) == "formatted"


@pytest.mark.parametrize("language, main, helper", [
    ("python", "from . import helper\ndef f():\n    return helper.g()\n",
     "import kryon\ndef g():\n    return '{0.__globals__}'.format(kryon.call)\n"),
    ("lisp", "(import .helper [g])\n(defn f [] (g))\n",
     '(defn g []\n  (.format "{0.__globals__[__name__]}" hy.eval))\n'),
])
def test_a_file_beside_the_script_is_rewritten_too(tmp_path, language, main, helper):
    ext = {"python": "py", "lisp": "kl"}[language]
    (tmp_path / f"main.{ext}").write_text(main)
    (tmp_path / f"helper.{ext}").write_text(helper)
    with ScriptManager(cache=False, policy=SecurityPolicy.sandboxed(time_limit=10)) as m:
        m.load_script_file(tmp_path / f"main.{ext}")
        with pytest.raises(AccessDeniedError) as info:
            m.call_function("main.f")
        assert "__globals__" in info.value.message


#: class patterns whose positional sub-patterns read the names __match_args__ holds
POSITIONAL = {
    "metaclass": ("class M(type):\n    def __instancecheck__(cls, obj):\n        return True\n"
                  "X = M('X', (), {'__match_args__': ('__globals__',)})\n", "kryon.call", "X(g)"),
    "str subclass": ("X = type('X', (str,), {'__match_args__': ('format',)})\n", "X('{0.__globals__}')", "X(g)"),
    "namedtuple": ("import collections\nclass M(type):\n    def __instancecheck__(cls, obj):\n        return True\n"
                   "T = collections.namedtuple('T', ['gi_frame'])\nclass X(T, metaclass=M):\n    pass\n",
                   "(i for i in ())", "X(g)"),
    "builtin": ("", "'s'", "str(g)"),
    "nested": ("", "[1]", "[int(g)]"),
}


@pytest.mark.parametrize("name", list(POSITIONAL))
def test_a_positional_class_pattern_is_refused_at_load(manager, name):
    setup, subject, pattern = POSITIONAL[name]
    source = "import kryon\n" + setup + f"def f():\n    match {subject}:\n        case {pattern}: return g\n    return 0\n"
    with pytest.raises(AccessDeniedError) as info:
        manager.load_script_from_source("pos", "python", source)
    assert info.value.line == source.count("\n") - 1 and "positional" in info.value.message
    with pytest.raises(guard.GuardViolation):
        guard.check_code(compile(source, "pos", "exec"))


def test_keyword_and_as_patterns_still_match(manager):
    manager.load_script_from_source("kw", "python", (
        "import collections\nP = collections.namedtuple('P', ['x', 'y'])\n"
        "def f(v):\n    match v:\n        case P(x=0, y=y): return ['P', y]\n        case int() as n: return ['int', n]\n"
        "        case [str() as s, *_]: return ['str', s]\n    return None\n"
        "def g():\n    return [f(P(0, 5)), f(3), f(['a', 1])]\n"))
    assert manager.call_function("kw.g") == [["P", 5], ["int", 3], ["str", "a"]]
    guard.check_code(compile("match v:\n    case int() as n: pass\n    case P(x=1): pass\n", "s", "exec"))
