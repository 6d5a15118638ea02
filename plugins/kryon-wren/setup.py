"""Builds kryon_wren.wasm from csrc/ while building the wheel, and the
optional compiled caller (kryon_wren/_ccall.c).

The wasm module is produced by zig's clang (the `ziglang` build
requirement) and placed inside the `kryon_wren` package. The compiled
caller is built when a C compiler is present; without one the install
still succeeds and the Python caller does every call (kryon_wren/ccall.py
checks whether it loaded). With it the wheel is tagged for the platform.
"""
import importlib.util
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _load_builder():
    spec = importlib.util.spec_from_file_location("kryon_wren_build", HERE / "build_wasm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithWasm(build_py):
    """build_py that compiles the VM to wasm into the build tree."""

    def run(self):
        super().run()
        builder = _load_builder()
        target = Path(self.build_lib) / "kryon_wren" / "kryon_wren.wasm"
        if os.environ.get("KRYON_WREN_PREBUILT") and builder.DEFAULT_WASM.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(builder.DEFAULT_WASM.read_bytes())
            return
        builder.build_wasm(target)


cmdclass = {"build_py": BuildPyWithWasm}

setup(
    cmdclass=cmdclass,
    ext_modules=[Extension("kryon_wren._ccall", ["kryon_wren/_ccall.c"], optional=True)],
)
