"""``max_recursion`` is the script's depth on every way in, sandboxed (the
worker sets Python's limit per entry from the depth where script code
starts) and trusted (the in-process tracer counts script frames); see
recursion_support.py."""

from __future__ import annotations

import sys

import pytest
from recursion_support import check_entries

pytest.importorskip("kryon_python")

SOURCE = """import kryon
def depth(n):
    return 1 if n <= 1 else 1 + depth(n - 1)
async def adepth(n):
    return depth(n)
def give():
    return depth
def reenter(n):
    return kryon.call('r.depth', n)
def talk(n):
    return kryon.get_variable('x') if n <= 1 else talk(n - 1)
def gen(n):
    yield depth(n)
"""


def _load(n: int) -> str:
    return SOURCE + f"result = depth({n})\n"


def _evaluation(n: int) -> str:
    return f"depth({n})"


@pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")
def test_sandboxed_python_recursion_limit_is_the_scripts_depth() -> None:
    check_entries("python", SOURCE, _load, 3, _evaluation)


def test_trusted_python_recursion_limit_is_the_scripts_depth() -> None:
    check_entries("python", SOURCE, _load, 3, _evaluation, sandboxed=False)
