"""Runs every tests/wren/cases/*.wren file in the Kryon Wren VM.

Expectations are comments in the case file:
  // expect: TEXT                   a line of output, in order
  // expect runtime error: MESSAGE  the run ends with this runtime error
  // expect error                   a compile error on this line
  // expect error line N            a compile error on line N
Modules imported by a case are read from cases/modules/NAME.wren.
"""
import re
from pathlib import Path

import pytest

kryon_wren = pytest.importorskip(
    "kryon_wren", reason="kryon_wren is not installed (pip install ./plugins/kryon-wren)"
)

CASES = Path(__file__).parent / "cases"
MODULES = CASES / "modules"

EXPECT = re.compile(r"// expect: ?(.*)$")
EXPECT_RUNTIME = re.compile(r"// expect runtime error: (.+)$")
EXPECT_ERROR_LINE = re.compile(r"// expect error line (\d+)")
EXPECT_ERROR_HERE = re.compile(r"// expect error\s*$")


def parse_expectations(source):
    output, runtime_error, compile_line = [], None, None
    for number, line in enumerate(source.splitlines(), start=1):
        if m := EXPECT.search(line):
            output.append(m.group(1))
        if m := EXPECT_RUNTIME.search(line):
            runtime_error = (m.group(1).strip(), number)
        if m := EXPECT_ERROR_LINE.search(line):
            compile_line = int(m.group(1))
        elif EXPECT_ERROR_HERE.search(line):
            compile_line = number
    return output, runtime_error, compile_line


def load_module(name):
    path = MODULES / f"{name}.wren"
    return path.read_text(encoding="utf-8") if path.exists() else None


@pytest.mark.parametrize("case", sorted(CASES.glob("*.wren")), ids=lambda p: p.stem)
def test_case(case):
    source = case.read_text(encoding="utf-8")
    expected, runtime_error, compile_line = parse_expectations(source)
    vm = kryon_wren.WrenVM(capture=True, load_module=load_module)
    try:
        if compile_line is not None:
            with pytest.raises(kryon_wren.WrenCompileError) as info:
                vm.interpret(source, module="main")
            assert info.value.line == compile_line, info.value.message
            return
        if runtime_error is not None:
            with pytest.raises(kryon_wren.WrenRuntimeError) as info:
                vm.interpret(source, module="main")
            message, line = runtime_error
            assert info.value.message == message
            assert info.value.line == line, info.value.trace
        else:
            vm.interpret(source, module="main")
        actual = "".join(vm.output).split("\n")
        if actual and actual[-1] == "":
            actual.pop()
        assert actual == expected
    finally:
        vm.close()
