#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set-up (with the test tools), then pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
echo "kryon: running the tests (pytest tests $*)"
exec "${KRYON_VENV:-.venv}/bin/python" -m pytest tests "$@"
