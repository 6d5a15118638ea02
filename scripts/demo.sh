#!/usr/bin/env bash
# The demo: one app whose scripts in every installed language work together,
# played headlessly and printed as a tree. Extra arguments go to `kryon run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
KRYON="${KRYON_VENV:-.venv}/bin/kryon"
echo "kryon: running examples/todo ($KRYON run examples/todo)"
"$KRYON" run examples/todo "$@"
echo
echo "To use the app live in a browser, with its inspector beside it:"
echo "  $KRYON serve examples/todo      # then open http://127.0.0.1:8765/"
