"""kryon-tally: Tally, a tiny Lisp-like language, as a third-party Kryon engine.

The package is laid out like any Kryon engine: ``plugin`` (the entry
point, cheap to import), ``engine`` (the ScriptEngine), ``values`` (host
<-> Tally conversion), ``bridge`` (the ``kryon`` API), ``sandbox`` (policy
limits), and the language itself in ``reader`` and ``interpreter``.
"""

__version__ = "0.1.0"
LANGUAGE = "tally"
