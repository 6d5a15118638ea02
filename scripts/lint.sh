#!/usr/bin/env bash
# Type-check and lint what is held clean so far (CI runs this after the tests):
# mypy --strict on kryon_core and the engines listed in TYPED_ENGINES; ruff on kryon_core, the benchmarks,
# the examples, the scripts and the engines but kryon-js.
# kryon-js and the tests (ruff) and the other engines (mypy) are not clean yet; they join the lists as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${KRYON_VENV:-.venv}/bin/python"
echo "kryon lint: ruff check"
"$PY" -m ruff check kryon_core benchmarks examples scripts plugins/kryon-lua plugins/kryon-python plugins/kryon-lisp plugins/kryon-wren
echo "kryon lint: mypy --strict kryon_core"
"$PY" -m mypy kryon_core
# each engine is checked as its own package, with kryon_core from the repository root
TYPED_ENGINES="python wren lisp"
for engine in $TYPED_ENGINES; do
  echo "kryon lint: mypy --strict kryon_$engine"
  MYPYPATH="plugins/kryon-$engine" "$PY" -m mypy -p "kryon_$engine"
done
