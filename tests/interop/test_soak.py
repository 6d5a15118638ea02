"""Short soak runs (the long ones are ``benchmarks/soak.py``): load, call,
reload, click, call, unload many times in every language and policy; no
callback outlives its script and the engine's memory does not grow."""

from __future__ import annotations

import pytest

from kryon_core import ScriptManager, SecurityPolicy
from kryon_core.testing.soak import SOURCES, soak

#: what a language does not pass yet: language -> why
PENDING: dict[str, str] = {}
INSTALLED = [lang for lang in SOURCES if lang in ScriptManager(cache=False).languages]


@pytest.mark.parametrize("policy", ["trusted", "sandboxed"])
@pytest.mark.parametrize("language", INSTALLED)
def test_cycles_leave_nothing_behind(language: str, policy: str) -> None:
    if language in PENDING:
        pytest.skip(f"{language}: {PENDING[language]}")
    isolated = policy == "sandboxed" and language in ("python", "lisp")
    cycles = 6 if isolated else 150
    pol = SecurityPolicy.trusted() if policy == "trusted" else SecurityPolicy.sandboxed(time_limit=30)
    result = soak(language, pol, cycles=cycles, warmup=cycles // 3, every=max(1, cycles // 10))
    assert result.leftover == {"listeners": 0, "watchers": 0, "timers": 0, "animations": 0}
    # generous: a real leak (a script's state kept per cycle) is tens of thousands
    assert result.engine_slope <= 2048, f"engine memory grows {result.engine_slope:.0f} KiB per 1,000 cycles"
