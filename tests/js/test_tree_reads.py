"""The host's tree-sitter reads of a script's source (the eval-site rewrite and
the regex-literal check) when the deadline passes just after the parse.

Both parse through a read callback that answers ``b""`` once the deadline has
passed. A node's ``.text`` reads through that same callback, and tree-sitter
then waits for the text forever: a call whose deadline passed between the
parse and the first node read hung the host thread in C, where no watchdog
reaches (seen once in CI). Each case runs in a subprocess so a hang fails the
test instead of wedging the run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("kryon_js")

SCRIPT = textwrap.dedent(
    """
    import sys
    from kryon_js import evalsites, regexcost
    from kryon_js.probes import READ_CHUNK

    def after(reads):
        # a deadline that passes once the parse has made its reads
        calls = [0]
        def expired():
            calls[0] += 1
            return calls[0] > reads
        return expired

    def reads_of(text, chunk):
        # the reads the parse alone makes (the code under test reads in the same chunks)
        from kryon_js.probes import tree_parser
        data = text.encode("utf-8", "surrogatepass")
        calls = [0]
        def read(offset, _point):
            calls[0] += 1
            return data[offset:offset + chunk]
        tree_parser().parse(read)
        return calls[0]

    which = sys.argv[1]
    if which == "evalsites":
        text = "function f(s) { return eval(s) + eval('1'); }\\n" * 50
        fn = lambda t, expired: evalsites.rewrite(t, expired=expired)
        n = reads_of(text, READ_CHUNK)
        out = fn(text, after(n))
        assert out != text and "eval" in out
    else:
        text = "let r = /" + "a|" * 40000 + "b/;\\n"
        fn = regexcost.check_literals
        n = reads_of(text, READ_CHUNK)
        try:
            fn(text, expired=after(n))
        except regexcost.CostlyPattern:
            pass
        else:
            raise AssertionError("the costly literal was not found")
    print("done")
    """
)


@pytest.mark.parametrize("which", ["evalsites", "regexcost"])
def test_a_deadline_passing_after_the_parse_does_not_hang_the_read(which: str) -> None:
    try:
        run = subprocess.run([sys.executable, "-c", SCRIPT, which], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{which}: reading a node after the deadline hung")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
