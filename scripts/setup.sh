#!/usr/bin/env bash
# Set up a virtual environment with kryon-core and every engine under plugins/
# (and, with --tests, the test tools). Used by demo.sh and test.sh.
#
# Idempotent and incremental: the venv records a SHA-256 of each package's
# sources after installing it, and a later run reinstalls only the packages
# whose sources changed (or that are missing). The Wren VM's wasm is kept in
# the venv keyed by a hash of csrc/, so it is rebuilt only when the C or Wren
# sources of the VM change. Each step is printed as it starts.
#
#   KRYON_VENV=DIR   use another venv directory (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${KRYON_VENV:-.venv}"
WITH_TESTS=0
[ "${1:-}" = "--tests" ] && WITH_TESTS=1

say() { printf 'kryon setup: %s\n' "$*"; }
started=$SECONDS

if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
PY="$VENV/bin/python"
STAMPS="$VENV/kryon-stamps"
mkdir -p "$STAMPS"
# SHA-256 over the names and contents of the files under the given paths,
# leaving out build output (build/, *.egg-info, caches, the wasm itself).
tree_hash() {
  find "$@" \( -name build -o -name dist -o -name '*.egg-info' -o -name __pycache__ \) -prune -o \
    -type f ! -name '*.so' ! -name '*.wasm' ! -name '*.cwasm' ! -name '*_wren.inc' ! -name '*.pyc' -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# The distributions installed in the venv, one name a line (lower case).
installed="$("$PY" -c 'import importlib.metadata as m; print("\n".join(sorted({d.metadata["Name"].lower() for d in m.distributions()})))')"

# Which packages changed: NAME DIR HASH per line, for every package whose
# sources differ from what the venv recorded at its last install.
changed=()
declare -A hash_of dir_of
check() {
  local dir="$1" name="$2"; shift 2
  local hash; hash="$(cd "$dir" && tree_hash "$@")"
  if grep -qx "$name" <<<"$installed" && [ "$(cat "$STAMPS/$name" 2>/dev/null)" = "$hash" ]; then
    say "$name: up to date"
  else
    changed+=("$name"); hash_of[$name]="$hash"; dir_of[$name]="$dir"
  fi
}
check . kryon-core pyproject.toml README.md kryon_core
for plugin in plugins/*/; do
  plugin="${plugin%/}"
  [ -f "$plugin/pyproject.toml" ] && check "$plugin" "$(basename "$plugin")" .
done

if [ ${#changed[@]} -gt 0 ]; then
  t=$SECONDS
  wasm_cache=""
  if [ -n "${dir_of[kryon-wren]:-}" ]; then
    # kryon-wren's wheel build compiles the VM to wasm with zig; the wasm of
    # each csrc/ hash is kept in the venv and handed to the build as prebuilt
    wren="${dir_of[kryon-wren]}"
    wasm_cache="$STAMPS/kryon-wren-$(cd "$wren" && tree_hash csrc build_wasm.py).wasm"
    if [ -f "$wasm_cache" ]; then
      say "kryon-wren: the Wren VM's sources did not change: reusing its wasm"
      cp "$wasm_cache" "$wren/kryon_wren/kryon_wren.wasm"
      export KRYON_WREN_PREBUILT=1
    else
      say "kryon-wren: building the Wren VM (C to wasm with zig: a minute or two on a busy machine)"
    fi
  fi
  targets=()
  for name in "${changed[@]}"; do targets+=("${dir_of[$name]}"); done
  say "installing ${changed[*]} (new or changed sources)"
  "$PY" -m pip install -q --disable-pip-version-check "${targets[@]}"
  for name in "${changed[@]}"; do echo "${hash_of[$name]}" >"$STAMPS/$name"; done
  if [ -n "$wasm_cache" ] && [ ! -f "$wasm_cache" ]; then
    rm -f "$STAMPS"/kryon-wren-*.wasm
    "$PY" -c 'import shutil, sys, kryon_wren, pathlib
shutil.copyfile(pathlib.Path(kryon_wren.__file__).parent / "kryon_wren.wasm", sys.argv[1])' "$wasm_cache"
  fi
  say "installed in $((SECONDS - t)) s"
fi

if [ "$WITH_TESTS" = 1 ]; then
  # the test tools; dap-types for `kryon debug`, watchfiles for `--watch`, playwright drives the system Chromium,
  # mypy and ruff for scripts/lint.sh
  tools="pytest pytest-timeout hypothesis dap-types watchfiles playwright mypy ruff"
  if [ "$(cat "$STAMPS/test-tools" 2>/dev/null)" != "$tools" ]; then
    say "installing the test tools: $tools"
    "$PY" -m pip install -q --disable-pip-version-check $tools
    echo "$tools" >"$STAMPS/test-tools"
  else
    say "test tools: up to date"
  fi
fi
say "ready in $VENV ($((SECONDS - started)) s)"
