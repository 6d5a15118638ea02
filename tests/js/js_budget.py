"""What the JS tests of a time budget share (test_time_limits, test_sandbox_gaps,
test_eval_bounds, test_parse_abort, test_regex_compile_limit): a manager whose
sandboxed policy has the budget as its time limit, with a bystander script,
and the check that an attacker's call stops (within a bound of this thread's
CPU time, where one is given) and leaves the attacker and the bystander
working."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kryon_core import ScriptError, ScriptManager, SecurityPolicy

JS = "javascript"


def budget_manager(budget: float, **policy: Any) -> ScriptManager:
    """A manager under a sandboxed policy with ``time_limit=budget`` (and
    ``policy``), output dropped, and a script ``bystander`` whose ``bump()``
    counts its calls."""
    mgr = ScriptManager(cache_dir=False, policy=SecurityPolicy.sandboxed(time_limit=budget, **policy),
                        output=lambda lang, text: None)
    mgr.load_script_from_source("bystander", JS, "let n = 0; function bump() { return ++n; }")
    return mgr


def attacker_source(setup: str, body: str, *, catching: bool, ok: str) -> str:
    """An attacker whose ``attack()`` runs ``setup`` then ``body`` (forever,
    catching every error, when ``catching``), and whose ``ok()`` takes 1,000
    allocations of 1 KB and then returns ``ok`` (an expression that may use
    ``a``, their list): the memory the attack held must be back."""
    run = f"for (;;) {{ try {{ {body}; }} catch (e) {{}} }}" if catching else f"{body};"
    return (f"function attack() {{ {setup}\n  {run}\n}}\n"
            "function ok() { const a = []; for (let i = 0; i < 1000; i++) a.push('x'.repeat(1000) + i);\n"
            f"  return {ok}; }}")


def assert_stops(m: ScriptManager, source: str, errors: type[ScriptError] | tuple[type[ScriptError], ...], *,
                 ok: object, within: float | None = None, what: str = "the attack") -> ScriptError:
    """Load ``source`` as script ``attacker`` (it defines ``attack()`` and
    ``ok()``) and call ``attacker.attack``: it must end in one of ``errors``
    naming the attacker, after less than ``within`` seconds of this thread's
    CPU time where that is given; then ``attacker.ok()`` returns ``ok`` and the
    bystander still counts. The attacker is unloaded after. The error is
    returned for the caller's own checks."""
    m.load_script_from_source("attacker", JS, source)
    try:
        before = m.call_function("bystander.bump")
        start = time.thread_time()
        with pytest.raises(errors) as info:
            m.call_function("attacker.attack")
        spent = time.thread_time() - start
        assert info.value.script == "attacker", info.value
        if within is not None:
            assert spent < within, f"{what} ran {spent:.2f} s of CPU time, more than {within:.2f} s"
        assert m.call_function("attacker.ok") == ok
        assert m.call_function("bystander.bump") == before + 1
        return info.value
    finally:
        m.unload_script("attacker")
