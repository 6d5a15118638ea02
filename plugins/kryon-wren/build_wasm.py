"""Build the Kryon Wren VM.

    python build_wasm.py             # wasm32-wasi module -> kryon_wren/kryon_wren.wasm
    python build_wasm.py --native    # native debug runner (gcc) -> build/kryon-wren-native
    python build_wasm.py --out PATH  # wasm to another place (used by setup.py)

The wasm build uses zig's clang from the `ziglang` PyPI package, so no
system toolchain is needed. core.wren is embedded as a generated C
string (csrc/core_wren.inc) first.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
VM_SOURCES = ["value.c", "memory.c", "lexer.c", "compiler.c", "vm.c", "debug_step.c", "core.c", "core_text.c", "api.c",
              "bytecode.c", "slot_codec.c", "verify.c", "reload.c",
              "opt_modules.c", "opt_random.c", "opt_meta.c"]
# Wren sources embedded as C strings: csrc/NAME.wren -> csrc/NAME_wren.inc
WREN_SOURCES = ["core", "opt_random", "opt_meta"]
NATIVE_SOURCES = ["host_native.c", "main_native.c", "debug.c"]
DEFAULT_WASM = HERE / "kryon_wren" / "kryon_wren.wasm"

WASM_FLAGS = [
    "-target", "wasm32-wasi",
    "-O2",
    "-mexec-model=reactor",
    "-fno-strict-aliasing",
    "-Wl,-z,stack-size=1048576",
    "-Wl,--initial-memory=2097152",
    "-Wl,--strip-all",
]


def generate_core_inc() -> Path:
    """Turn core.wren (and the optional modules' .wren halves) into C string
    literals, one line per source line; returns core_wren.inc."""
    for name in WREN_SOURCES:
        source = (CSRC / f"{name}.wren").read_text(encoding="utf-8")
        lines = []
        for line in source.splitlines():
            escaped = line.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'"{escaped}\\n"')
        out = CSRC / f"{name}_wren.inc"
        text = f"/* Generated from {name}.wren by build_wasm.py; do not edit. */\n" + "\n".join(lines) + "\n"
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            out.write_text(text, encoding="utf-8")
    return CSRC / "core_wren.inc"


def build_hash() -> str:
    """A hash of every VM source, compiled in as KW_BUILD_HASH: a serialized
    module (csrc/bytecode.c) is only read by the build that wrote it."""
    digest = hashlib.sha256()
    for path in sorted(CSRC.iterdir()):
        if path.suffix in (".c", ".h", ".wren"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "-DKW_BUILD_HASH=0x" + digest.hexdigest()[:8] + "u"


def zig_cc() -> list[str]:
    return [sys.executable, "-m", "ziglang", "cc"]


def build_wasm(out: Path = DEFAULT_WASM) -> Path:
    generate_core_inc()
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = zig_cc() + WASM_FLAGS + [build_hash(), "-o", str(out)] + [str(CSRC / s) for s in VM_SOURCES]
    env = dict(os.environ)
    # zig keeps a cache; make sure it is writable even in sandboxed builds.
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(Path.home() / ".cache" / "zig"))
    subprocess.run(cmd, check=True, cwd=str(CSRC), env=env)
    return out


def build_native(out: Path | None = None, sanitize: bool = False) -> Path:
    generate_core_inc()
    out = out or HERE / "build" / "kryon-wren-native"
    out.parent.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise SystemExit("no C compiler found for the native build")
    flags = ["-DKW_DEBUG", "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"]
    if sanitize:
        flags = ["-DKW_DEBUG", "-O0", "-g", "-fsanitize=address,undefined", "-Wall", "-fno-strict-aliasing"]
    cmd = [cc] + flags + [build_hash(), "-o", str(out)] + [str(CSRC / s) for s in VM_SOURCES + NATIVE_SOURCES] + ["-lm"]
    subprocess.run(cmd, check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--native", action="store_true", help="build the native debug runner")
    parser.add_argument("--sanitize", action="store_true", help="native build with ASan/UBSan")
    parser.add_argument("--out", type=Path, help="output path")
    args = parser.parse_args()
    if args.native or args.sanitize:
        print(build_native(args.out, args.sanitize))
    else:
        print(build_wasm(args.out or DEFAULT_WASM))


if __name__ == "__main__":
    main()
