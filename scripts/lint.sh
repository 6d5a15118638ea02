#!/usr/bin/env bash
# Type-check and lint the whole repository (CI runs this after the tests): ruff on the code, the
# tests, the benchmarks, the examples and the scripts; mypy --strict on kryon_core and on every engine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${KRYON_VENV:-.venv}/bin/python"
echo "kryon lint: ruff check"
"$PY" -m ruff check kryon_core benchmarks examples scripts plugins tests
echo "kryon lint: mypy --strict kryon_core"
"$PY" -m mypy kryon_core
# each engine is checked as its own package, with kryon_core from the repository root
ENGINES="python wren lisp lua js"
for engine in $ENGINES; do
  echo "kryon lint: mypy --strict kryon_$engine"
  MYPYPATH="plugins/kryon-$engine" "$PY" -m mypy -p "kryon_$engine"
done
