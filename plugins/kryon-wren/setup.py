"""Builds kryon_wren.wasm from csrc/ while building the wheel.

The wasm module is produced by zig's clang (the `ziglang` build
requirement) and placed inside the `kryon_wren` package, so the wheel is
pure Python (py3-none-any) plus one platform-neutral .wasm file.
"""
import importlib.util
import os
from pathlib import Path

from setuptools import setup
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


try:
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # pragma: no cover
    _bdist_wheel = None

cmdclass = {"build_py": BuildPyWithWasm}

if _bdist_wheel is not None:

    class PurePythonWheel(_bdist_wheel):
        """The .wasm runs anywhere wasmtime does: tag the wheel py3-none-any."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = True

        def get_tag(self):
            return "py3", "none", "any"

    cmdclass["bdist_wheel"] = PurePythonWheel

setup(cmdclass=cmdclass)
