"""Callbacks a script hands the document through its own ``kryon`` view are
owned by that script however the engine made them (a plain callable, or a
FunctionRef without an owner), so unloads, reloads and failed loads release
them."""

from __future__ import annotations

from prog_engine import prog_manager

from kryon_core import Document, SecurityPolicy

SOURCE = """
el = kryon.get_element_by_id("btn")
kryon.add_event_listener(el, "click", lambda e: hits.append("click"))
kryon.watch_variable("v", lambda new, old, name: hits.append("watch"))
kryon.set_timeout(lambda: hits.append("timeout"), 5)
kryon.set_interval(lambda: hits.append("interval"), 5)
kryon.animate(el, {"property": "x", "to": 1, "duration": 5, "onComplete": lambda: hits.append("done")})
"""


def test_plain_callables_are_owned_by_the_registering_script():
    for policy in (SecurityPolicy.trusted(), SecurityPolicy.sandboxed()):
        m = prog_manager(policy=policy)
        doc = m.setup_dom_bridge(Document())
        doc.append_child(doc.root, doc.create_element("button", {"id": "btn"}))
        hits: list[str] = []
        m.engine("prog").injected["hits"] = hits
        for _cycle in range(3):
            m.load_script_from_source("s", "prog", SOURCE)
            m.hot_reload_script("s", SOURCE + "\n")
            counts = doc.callback_counts()
            assert counts == {"listeners": 1, "watchers": 1, "timers": 2, "animations": 2}, counts
            m.unload_script("s")
            assert doc.callback_counts()["listeners"] == 0
            doc.advance(20)  # the old version's animations finish without their callbacks
            assert doc.callback_counts() == {"listeners": 0, "watchers": 0, "timers": 0, "animations": 0}
        assert hits == []
        m.close()
