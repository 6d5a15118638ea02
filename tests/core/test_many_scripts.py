"""10,000 small sandboxed scripts in one host (Lua and JavaScript), each
under its own memory limit: the last one loaded still runs, and one that
allocates past its limit fails alone while the others keep their state.
Slow (a few minutes per language on a busy machine): ``-m slow``."""

from __future__ import annotations

import pytest

from kryon_core import MemoryLimitError, ScriptManager, SecurityPolicy
from kryon_core.testing.soak import COUNTERS

MiB = 1024 * 1024
#: each script's limit: 10,000 of them together hold far more than one limit
CAP = 4 * MiB
COUNT = 10_000
HOGS = {
    "lua": "held = {}\nfunction grab() for i = 1, 1000 do held[i] = string.rep('x', 65536) .. i end return #held end\n",
    "javascript": "var held = [];\nfunction grab() {\n  for (var i = 0; i < 1000; i++) held.push('x'.repeat(65536) + i);\n"
                  "  return held.length;\n}\n",
}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 10,000 loads: minutes on a busy machine
@pytest.mark.parametrize("language", ["lua", "javascript"])
def test_ten_thousand_scripts_each_with_its_own_memory_limit(language: str) -> None:
    m = ScriptManager(policy=SecurityPolicy.sandboxed(memory_limit=CAP, time_limit=10.0), cache=False,
                      output=lambda lang, text: None)
    if language not in m.languages:
        pytest.skip(f"{language} is not installed")
    try:
        for i in range(COUNT):
            m.load_script_from_source(f"s{i}", language, COUNTERS[language])
        assert m.call_function(f"s{COUNT - 1}.bump", [2]) == 2
        assert m.call_function("s0.bump", [3]) == 3
        m.load_script_from_source("hog", language, HOGS[language])
        with pytest.raises(MemoryLimitError) as info:
            m.call_function("hog.grab")
        assert info.value.script == "hog"
        # the others keep their own state and their own room to grow
        assert m.call_function("s0.bump", [1]) == 4
        assert m.call_function(f"s{COUNT // 2}.bump", [5]) == 5
        assert m.call_function(f"s{COUNT - 1}.bump", [1]) == 3
    finally:
        m.close()
