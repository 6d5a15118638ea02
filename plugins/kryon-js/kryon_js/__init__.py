"""kryon-js: JavaScript for Kryon, on QuickJS (the quickjs-ng binding).

The engine class is ``kryon_js.engine.JSEngine``; importing this package does
not import the binding.
"""

__version__ = "0.1.0"
