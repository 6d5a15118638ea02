"""Hot functions move to a faster tier where the engine has one, and the
profiler reports the tier and the measured speed-up; elsewhere a hot
function is not a JIT candidate."""

from __future__ import annotations

from prog_engine import ProgEngine

from kryon_core import EngineSpec, ScriptManager, SecurityPolicy, hookimpl


class TieredEngine(ProgEngine):
    """A prog engine with a second tier: doubling every result marks it."""

    language = "tiered"
    moved: list[tuple[str, str]] = []

    def faster_tier(self, script: str, function: str) -> str | None:
        return "fast" if function.startswith("hot_") else None

    def on_hot_function(self, script: str, function: str) -> tuple[str, float] | None:
        if self.faster_tier(script, function) is None:
            return None
        original = self.namespaces[script][function]
        self.namespaces[script][function] = lambda *a: 2 * original(*a)
        TieredEngine.moved.append((script, function))
        return "fast", 3.5


class Plugin:
    @hookimpl
    def kryon_register_engines(self) -> list[EngineSpec]:
        return [EngineSpec(language="tiered", factory=TieredEngine)]


def test_a_hot_function_moves_and_handles_follow() -> None:
    m = ScriptManager(plugins=[Plugin()], discover=False, cache=False, policy=SecurityPolicy.trusted(), hot_threshold=3)
    m.load_script_from_source("s", "tiered", "def hot_add(a, b): return a + b\ndef plain(a): return a")
    bound = m.function("s.hot_add")
    for _ in range(3):
        assert m.call_function("s.hot_add", [1, 2]) == 3
        m.call_function("s.plain", [1])
    assert TieredEngine.moved == [("s", "hot_add")]
    assert m.call_function("s.hot_add", [1, 2]) == 6, "the manager calls the new tier"
    assert bound(1, 2) == 6, "bound handles follow the move"
    info = {h.function_name: h for h in m.profiler.hot_functions()}
    assert (info["s.hot_add"].tier, info["s.hot_add"].speedup_factor, info["s.hot_add"].is_jit_candidate) == ("fast", 3.5, True)
    assert (info["s.plain"].tier, info["s.plain"].is_jit_candidate) == (None, False)
    m.close()
