"""The optional compiled caller (kryon_js/_ccall.c): built when a C compiler
is present; without one the install still succeeds and the Python callers do
every call (kryon_js/ccall.py checks whether it loaded)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kryon_js._ccall", ["kryon_js/_ccall.c"], optional=True)])
