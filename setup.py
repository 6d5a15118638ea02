"""The optional compiled core (kryon_core/_speedups.c): built when a C compiler
is present; without one the install still succeeds and the pure-Python paths
do everything (kryon_core/speedups.py checks whether it loaded)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kryon_core._speedups", ["kryon_core/_speedups.c"], depends=["kryon_core/_speedups_api.h"],
                             optional=True)])
