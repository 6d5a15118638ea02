"""Library calls whose work in C a sandboxed script sizes (issue 10): the
parser behind ``load``, ``table.unpack`` of a range, ``utf8.char`` and
``string.format`` with as many arguments as the stack takes. Each is bounded:
a clear error naming the script and line (or a result), within a modest CPU
time, and the host and other scripts keep working."""

import time

import pytest

pytest.importorskip("kryon_lua")

from kryon_core import ScriptError, ScriptManager, SecurityPolicy, SizeLimitError  # noqa: E402

MiB = 1024 * 1024
#: CPU seconds any one of these may take (generous: parsing 4 MiB takes well under one)
CPU_BOUND = 10.0


@pytest.fixture
def manager():
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=20, max_source_size=1000), cache=False,
                      output=lambda lang, text: None)
    m.load_script_from_source("ok", "lua", "function f() return 1 end")
    yield m
    m.close()


LOADS = """
function text(n) local f = load(("x=1 "):rep(n // 4)) return f ~= nil end
function reader(n)
  local i = 0
  local f = load(function() i = i + 1 if i <= n // 4 then return "x=1 " end end)
  return f ~= nil
end
function oneBigPiece(n)
  local given = false
  local f = load(function() if not given then given = true return ("x=1 "):rep(n // 4) end end)
  return f ~= nil
end
function caught(n)
  local ok, err = pcall(load, ("x=1 "):rep(n // 4))
  return ok, err
end
"""


@pytest.mark.parametrize("function", ["text", "reader", "oneBigPiece"])
def test_load_takes_at_most_max_source_size(manager, function):
    manager.load_script_from_source("l", "lua", LOADS)
    assert manager.call_function(f"l.{function}", [1000]) is True, "a chunk of exactly the limit loads"
    with pytest.raises(SizeLimitError) as caught:
        manager.call_function(f"l.{function}", [1004])
    err = caught.value
    assert (err.script, err.language) == ("l", "lua") and err.line is not None
    assert "max_source_size (1000 bytes)" in str(err)
    assert manager.call_function("ok.f") == 1


def test_a_script_may_catch_the_size_error(manager):
    manager.load_script_from_source("l", "lua", LOADS)
    ok, message = manager.call_function("l.caught", [4000])
    assert ok is False and "max_source_size" in message


def test_trusted_load_is_not_bounded():
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False)
    try:
        m.load_script_from_source("l", "lua", LOADS)
        assert m.call_function("l.text", [100_000]) is True
    finally:
        m.close()


def test_the_largest_chunk_allowed_parses_in_bounded_time():
    """At the default max_source_size (4 MiB) the costliest chunk we know to
    parse (a table of distinct string constants) stays far under the bound:
    the parser is the one place the count hook cannot interrupt."""
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=60), cache=False)
    try:
        m.load_script_from_source("l", "lua", """
function worst(size)
  local t = { "return {" }
  local n = 8
  local i = 0
  while n < size - 16 do i = i + 1 local item = '"k' .. i .. '",' t[#t + 1] = item n = n + #item end
  t[#t + 1] = "}"
  local chunk = table.concat(t)
  return #chunk, #load(chunk)()
end
""")
        start = time.process_time()
        size, count = m.call_function("l.worst", [4 * MiB])
        assert time.process_time() - start < CPU_BOUND
        assert 4 * MiB - 32 < size <= 4 * MiB and count > 300_000
    finally:
        m.close()


WIDE = {
    "unpack_1e8": "return select('#', table.unpack({}, 1, 1e8))",
    "unpack_maxinteger": "return select('#', table.unpack({}, 1, math.maxinteger))",
    "unpack_whole_range": "return select('#', table.unpack({}, math.mininteger, math.maxinteger))",
    "unpack_near_stack": "return select('#', table.unpack({}, 1, 999990))",
    "utf8_char_many": "local t = {} for i = 1, 999990 do t[i] = 0x7FFFFFFF end return #utf8.char(table.unpack(t))",
    "format_many": "local t = {} for i = 1, 999990 do t[i] = i end return #string.format(('%d'):rep(999990), table.unpack(t))",
}


@pytest.mark.parametrize("cap", [None, 8 * MiB])
@pytest.mark.parametrize("attack", sorted(WIDE))
def test_wide_calls_are_bounded(attack, cap):
    m = ScriptManager(policy=SecurityPolicy.sandboxed(time_limit=20, memory_limit=cap), cache=False)
    try:
        m.load_script_from_source("ok", "lua", "data = {1, 2}\nfunction f() return #data end")
        m.load_script_from_source("w", "lua", f"function f()\n  {WIDE[attack]}\nend")
        start = time.process_time()
        with pytest.raises(ScriptError) as caught:
            m.call_function("w.f")
        assert time.process_time() - start < CPU_BOUND
        err = caught.value
        assert (err.script, err.language) == ("w", "lua")
        assert "too many results" in str(err) or "memory" in str(err) or "stack overflow" in str(err), str(err)
        assert m.call_function("ok.f") == 2
        m.load_script_from_source("small", "lua", "function f() return #utf8.char(table.unpack({72, 105})) end")
        assert m.call_function("small.f") == 2
    finally:
        m.close()
