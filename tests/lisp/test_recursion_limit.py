"""``max_recursion`` is the Lisp script's depth on every way in, sandboxed
and trusted (the driver is tests/python/recursion_support.py)."""

from __future__ import annotations

import sys

import pytest
from recursion_support import check_entries  # tests/python (conftest.py)

SOURCE = """(import kryon)
(defn depth [n]
  (if (<= n 1) 1 (+ 1 (depth (- n 1)))))
(defn :async adepth [n] (depth n))
(defn give [] depth)
(defn reenter [n] (kryon-call "r.depth" n))
(defn talk [n] (if (<= n 1) (kryon.get-variable "x") (talk (- n 1))))
(defn gen [n] (yield (depth n)))
"""


def _load(n: int) -> str:
    return SOURCE + f"(setv result (depth {n}))\n"


def _evaluation(n: int) -> str:
    return f"(depth {n})"


@pytest.mark.skipif(sys.platform != "linux", reason="the worker sandbox uses Linux limits")
def test_sandboxed_lisp_recursion_limit_is_the_scripts_depth() -> None:
    check_entries("lisp", SOURCE, _load, 3, _evaluation)


def test_trusted_lisp_recursion_limit_is_the_scripts_depth() -> None:
    check_entries("lisp", SOURCE, _load, 3, _evaluation, sandboxed=False)
