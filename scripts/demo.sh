#!/usr/bin/env bash
# Run the demo app: scripts in every installed language working together.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${KRYON_VENV:-.venv}/bin/kryon" run examples/todo "$@"
