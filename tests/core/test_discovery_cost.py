"""Discovery must stay cheap: ScriptManager() imports plugin modules only,
never a language runtime or an engine module, nor the slow-to-import
``importlib.metadata`` (entry points are read from the dist-info folders) or
``platformdirs`` (the cache folder is looked up on first use of the disk)."""

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
from kryon_core import ScriptManager
m = ScriptManager()
heavy = ("lupa", "quickjs", "wasmtime", "hy", "hyrule", "asyncio", "importlib.metadata", "platformdirs", "email")
new = set(sys.modules) - before
loaded = sorted({h for h in heavy for n in new if n == h or n.startswith(h + ".")})
engines = sorted(n for n in sys.modules if n.startswith("kryon_") and n.endswith(".engine") and n != "kryon_core.engine")
print(json.dumps({"languages": m.languages, "heavy": loaded, "engines": engines}))
"""


def test_discovery_imports_no_runtime():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["heavy"] == [], f"discovery imported {found['heavy']} (installed: {found['languages']})"
    assert found["engines"] == [], f"discovery imported engine modules {found['engines']}"
