"""The modules a Wren script imports without the host (the engine's ``io``,
the VM's ``random`` and ``meta``) are set up with every script's VM
(bridge.script_prelude), so the VM image holds them compiled: a warm load of
a script importing them runs no Wren compiler at all, in this process and in
a fresh one. Counted with the instance's compiler entries
(``wren_compiler_runs``), never timed. They behave as when they were
compiled at the import: ``io`` is still refused to a sandboxed script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from kryon_core import AccessDeniedError, ScriptManager, SecurityPolicy

pytest.importorskip("kryon_wren")
from kryon_wren import snapshot  # noqa: E402

IMPORTS_ALL = """\
import "io" for File
import "random" for Random
import "meta" for Meta
class M {
  static run(path) {
    var r = Random.new(7)
    return [File.exists(path), r.int(1000) == Random.new(7).int(1000), Meta.eval("1 + 2") == null,
            Meta.getModuleVariables("io")[-1]]
  }
  static read(path) { File.read(path) }
}
"""

IMPORTS_NOTHING = "class M {\n  static run(path) { [path] }\n}\n"

CHILD = """
import json, sys
from kryon_core import ScriptManager, SecurityPolicy
from kryon_wren import snapshot
m = ScriptManager(policy=SecurityPolicy.trusted(), cache_dir=sys.argv[1], output=lambda lang, text: None)
m.load_script_from_source("prog", "wren", open(sys.argv[2], encoding="utf-8").read())
engine = m.engine("wren")
print(json.dumps({"from_cache": m.scripts["prog"].compiled.from_cache,
                  "runs": engine._scripts["prog"].vm.compiler_runs(),
                  "restored": snapshot.stats["restored"],
                  "value": m.call_function("prog.M.run", [sys.argv[2]])}))
m.close()
"""


def run_child(cache: str, path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, cache, path], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "KRYON_WREN_CACHE": os.path.join(cache, "wasm")})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(os.environ.get("KRYON_WREN_SNAPSHOT", "1") == "0", reason="the VM image is turned off")
def test_a_warm_load_importing_io_random_and_meta_compiles_nothing_in_a_fresh_process(tmp_path) -> None:
    path = tmp_path / "prog.wren"
    path.write_text(IMPORTS_ALL, encoding="utf-8")
    cold, warm = run_child(str(tmp_path), str(path)), run_child(str(tmp_path), str(path))
    # the cold process compiled the core library, kryon, io, the module
    # importing random and meta, random and meta (and the script in its checker)
    assert not cold["from_cache"] and cold["runs"] == 6, textwrap.shorten(str(cold), 300)
    assert warm["from_cache"] and warm["restored"] == 1
    assert warm["runs"] == 0, textwrap.shorten(str(warm), 300)
    assert cold["value"] == warm["value"] == [True, True, True, "File"]


def test_a_load_importing_them_runs_no_compiler_once_the_image_exists(fresh_images, tmp_path) -> None:
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    try:
        m.load_script_from_source("first", "wren", IMPORTS_NOTHING)  # takes the image
        engine = m.engine("wren")
        assert engine._scripts["first"].vm.compiler_runs() == 6
        m.load_script_from_source("all", "wren", IMPORTS_ALL)
        m.load_script_from_source("none", "wren", IMPORTS_NOTHING)
        # the script itself comes from the engine's compile (bytecode), its set-up from the image
        assert engine._scripts["all"].vm.compiler_runs() == 0
        assert engine._scripts["none"].vm.compiler_runs() == 0
        assert m.call_function("all.M.run", [str(tmp_path)]) == [True, True, True, "File"]
        assert m.call_function("none.M.run", ["x"]) == ["x"]
    finally:
        m.close()


def test_each_script_has_its_own_modules_and_policy(fresh_images, tmp_path) -> None:
    """Each script's VM has its own copy, bound to its own policy: a
    sandboxed script's File is refused while a trusted one's reads."""
    target = tmp_path / "t.txt"
    target.write_text("hello", encoding="utf-8")
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    try:
        m.load_script_from_source("a", "wren", IMPORTS_ALL)
        m.load_script_from_source("b", "wren", IMPORTS_ALL, policy=SecurityPolicy.sandboxed())
        assert m.call_function("a.M.read", [str(target)]) == "hello"
        with pytest.raises(AccessDeniedError) as info:
            m.call_function("b.M.read", [str(target)])
        assert info.value.script == "b" and info.value.language == "wren"
        assert m.call_function("a.M.run", [str(target)])[:2] == [True, True]
    finally:
        m.close()


def test_with_the_image_off_the_modules_still_load_and_work(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(snapshot, "enabled", False)
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    try:
        m.load_script_from_source("all", "wren", IMPORTS_ALL)
        # set up from source: core, kryon, io, the builtins module, random, meta
        assert m.engine("wren")._scripts["all"].vm.compiler_runs() == 6
        assert m.call_function("all.M.run", [str(tmp_path)]) == [True, True, True, "File"]
    finally:
        m.close()
