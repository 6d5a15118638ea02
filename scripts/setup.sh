#!/usr/bin/env bash
# Set up a virtual environment with kryon-core, every engine under plugins/,
# and the test tools. Idempotent; used by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${KRYON_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip
targets=(.)
for plugin in plugins/*/; do
  if [ -f "$plugin/pyproject.toml" ]; then
    targets+=("$plugin")
  fi
done
"$PY" -m pip install -q --disable-pip-version-check "${targets[@]}" pytest pytest-timeout hypothesis dap-types watchfiles playwright
echo "kryon: environment ready in $VENV"
