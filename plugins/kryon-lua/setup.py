"""The optional compiled caller (kryon_lua/_ccall.c): built when a C compiler
is present; without one the install still succeeds and the Python callers do
every call (kryon_lua/ccall.py checks whether it loaded)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kryon_lua._ccall", ["kryon_lua/_ccall.c"], optional=True)])
