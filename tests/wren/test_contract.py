"""kryon-wren against the engine contract suite (kryon_core.testing)."""

import pytest

from kryon_core.testing import EngineContract, Snippets

pytest.importorskip("kryon_wren")

LIBRARY = """\
import "kryon" for Kryon
import "io" for File
var add = Fn.new { |a, b|
  var sum = a + b
  return sum
}
var echo = Fn.new { |x| x }
var apply = Fn.new { |f, x| f.call(x) }
var make_adder = Fn.new { |n| Fn.new { |x| x + n } }
var call_other = Fn.new { |name, x| Kryon.call(name, x) }
var fail = Fn.new {
  Fiber.abort("boom")
}
var read_global = Fn.new { Kryon.global("shared_setting") }
var shout = Fn.new { |text| System.print(text) }
var spin = Fn.new { while (true) {} }
var hog = Fn.new {
  var t = []
  var i = 0
  while (true) {
    i = i + 1
    t.add("x" * 1024 + i.toString)
  }
}
var dive
dive = Fn.new { |n| dive.call(n + 1) + 1 }
var forbidden = Fn.new { File.read("/etc/hostname") }
"""

DOM = """\
import "kryon" for Kryon
var btn = Kryon.getElementById("btn")
Kryon.addEventListener(btn, "click", Fn.new { |event|
  Kryon.setProperty(event["target"], "text", "clicked")
})
Kryon.setVariable("ready", true)
Kryon.setTimeout(Fn.new { Kryon.setVariable("timer", "fired") }, 100)
"""

WREN = Snippets(
    language="wren",
    library=LIBRARY,
    fail_line=12,
    dom=DOM,
    counter_v1="class Counter {\n  static version() { 1 }\n}\nvar version = Fn.new { 1 }\n",
    counter_v2="class Counter {\n  static version() { 2 }\n}\nvar version = Fn.new { 2 }\n",
    syntax_error="var version = Fn.new {\n  return = 2\n}\n",
    syntax_error_line=2,
    ident_a='var ident = "a"\nvar get_ident = Fn.new { ident }\n',
    ident_b='var ident = "b"\nvar get_ident = Fn.new { ident }\n',
    breakpoint_line=4,
    distinct_int_float=False,
    raise_statement='Fiber.abort("load fails")',
    evaluate=('var x = 40', 'x + 2'),
    spin_statement="while (true) {}",
    nest="var nest\nnest = Fn.new { |n| n == 0 ? 0 : nest.call(n - 1) + 1 }\n",
)


class TestWrenContract(EngineContract):
    snippets = WREN
