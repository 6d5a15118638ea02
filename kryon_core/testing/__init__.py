"""The engine contract suite: the tests every Kryon engine passes.

An engine distribution runs it against itself by subclassing
:class:`EngineContract` in one of its test modules and supplying
:class:`Snippets` in its language::

    from kryon_core.testing import EngineContract, Snippets

    class TestRubyContract(EngineContract):
        snippets = Snippets(language="ruby", library=..., ...)

pytest then collects every ``test_*`` method below for that engine, under a
trusted and a sandboxed policy. See ``docs/plugins.md`` for the snippet
requirements; the Lua snippets in ``tests/lua/test_contract.py`` are a
worked example.
"""

from .contract import EngineContract, Snippets

__all__ = ["EngineContract", "Snippets"]
