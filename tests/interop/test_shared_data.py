"""Shared data across languages: policies per object, read-only objects,
change listeners written in any language."""

from __future__ import annotations

import pytest

from kryon_core import AccessDeniedError, AccessPolicy, ScriptError, ScriptManager, SecurityPolicy

WATCHERS = {
    "lua": 'function watch(id) kryon.watchShared(id, function(key, new, old) kryon.setShared("seen_lua", new.n) end) end\n'
           'function write(id, v) kryon.setShared(id, v) end\nfunction read(id) return kryon.getShared(id) end',
    "javascript": 'function watch(id) { kryon.watchShared(id, (key, nv, old) => kryon.setShared("seen_javascript", nv.n)); }\n'
                  'function write(id, v) { kryon.setShared(id, v); }\nfunction read(id) { return kryon.getShared(id); }',
    "python": 'import kryon\ndef watch(id):\n    kryon.watch_shared(id, lambda key, new, old: kryon.set_shared("seen_python", new["n"]))\n'
              'def write(id, v): kryon.set_shared(id, v)\ndef read(id): return kryon.get_shared(id)',
    "lisp": '(defn watch [id] (watch-shared! id (fn [key new old] (set-shared! "seen_lisp" (get new "n")))))\n'
            '(defn write [id v] (set-shared! id v))\n(defn read [id] (get-shared id))',
}


@pytest.fixture
def manager():
    m = ScriptManager(policy=SecurityPolicy.trusted(), cache=False, output=lambda lang, text: None)
    langs = [lang for lang in WATCHERS if lang in m.languages]
    if not langs:
        pytest.skip("no engine installed")
    for lang in langs:
        m.load_script_from_source(f"s_{lang}", lang, WATCHERS[lang])
        m.shared.create(f"seen_{lang}", None)
    m.shared.create("counter", {"n": 0})
    yield m, langs
    m.close()


def test_listeners_in_every_language_see_writes_from_every_language(manager):
    m, langs = manager
    for lang in langs:
        m.call_function(f"s_{lang}.watch", ["counter"])
    for i, writer in enumerate(langs, start=1):
        m.call_function(f"s_{writer}.write", ["counter", {"n": i}])
        for lang in langs:
            assert m.shared.read(f"seen_{lang}") == i, f"{lang} did not see {writer}'s write"
    assert m.call_function(f"s_{langs[0]}.read", ["counter"]) == {"n": len(langs)}


def test_policies_name_object_and_language(manager):
    m, langs = manager
    reader, *others = langs
    m.shared.create("secret", {"k": 1}, policy=AccessPolicy.of(read=[reader], write=[]))
    m.shared.create("frozen", [1, 2], policy=AccessPolicy.of(readonly=True))
    assert m.call_function(f"s_{reader}.read", ["secret"]) == {"k": 1}
    with pytest.raises(ScriptError) as info:
        m.call_function(f"s_{reader}.write", ["secret", {"k": 2}])
    assert "secret" in str(info.value) and reader in str(info.value)
    for lang in others:
        with pytest.raises(ScriptError) as info:
            m.call_function(f"s_{lang}.read", ["secret"])
        assert "may not read shared object 'secret'" in str(info.value)
    with pytest.raises(ScriptError, match="read-only"):
        m.call_function(f"s_{reader}.write", ["frozen", [3]])
    assert m.shared.read("frozen") == [1, 2]
    with pytest.raises(AccessDeniedError):
        m.shared.write("frozen", [0])


def test_listener_of_unloaded_script_is_released(manager):
    m, langs = manager
    lang = langs[0]
    m.call_function(f"s_{lang}.watch", ["counter"])
    m.unload_script(f"s_{lang}")
    m.shared.write("counter", {"n": 99})
    assert m.shared.read(f"seen_{lang}") is None


def test_values_are_detached_copies(manager):
    m, langs = manager
    data = {"n": 1, "list": [1, 2]}
    m.shared.create("copy", data)
    data["list"].append(3)
    assert m.shared.read("copy") == {"n": 1, "list": [1, 2]}
    got = m.shared.read("copy")
    got["n"] = 5
    assert m.shared.read("copy")["n"] == 1
