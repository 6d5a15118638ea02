#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set-up (with the test tools), then pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
echo "kryon: running the tests (pytest tests $*)"
# The tests import the installed distributions, as a user's code does: without PYTHONSAFEPATH,
# `python -m` would put this checkout first on sys.path, and its kryon_core has no compiled core
# (kryon_core/_speedups.c is built at install, into the environment, not into the checkout).
export PYTHONSAFEPATH=1
exec "${KRYON_VENV:-.venv}/bin/python" -m pytest tests "$@"
