"""The value model's shared rules."""

import math

import pytest

from kryon_core import ConversionError, FunctionRef, ScriptError, UserData
from kryon_core.values import check_int, language_for_path, normalize_language, to_host


def test_to_host_rules():
    token = UserData(object())
    value = {"a": (1, 2), 3: [token, None, math.nan]}
    out = to_host(value)
    assert out["a"] == [1, 2] and out["3"][0] is token and math.isnan(out["3"][2])
    with pytest.raises(ConversionError):
        to_host({(1, 2): "tuple key"})
    with pytest.raises(ConversionError):
        to_host(object())


def test_cycles_are_rejected():
    loop = [1]
    loop.append(loop)
    with pytest.raises(ConversionError, match="cyclic"):
        to_host(loop)
    shared = [1]
    assert to_host([shared, shared]) == [[1], [1]], "shared (acyclic) references are fine"


def test_check_int():
    assert check_int(2**53, exact_limit=2**53, language="javascript") == 2**53
    with pytest.raises(ConversionError, match="2\\*\\*53"):
        check_int(2**53 + 1, exact_limit=2**53, language="javascript")
    with pytest.raises(ConversionError):
        check_int(2**63, exact_limit=None, language="lua")


def test_function_ref_release():
    ref = FunctionRef(lambda x: x + 1, name="inc", language="test", script="s")
    assert ref(1) == 2 and ref.alive
    ref.release()
    assert not ref.alive
    with pytest.raises(ScriptError, match="released"):
        ref(1)


def test_direct_function_ref_retargets():
    ref = FunctionRef.direct(lambda x: x * 2, name="d", language="test")
    assert ref(4) == 8 and isinstance(ref, FunctionRef)
    ref._retarget(lambda x: x * 3, None)
    assert ref(4) == 12
    ref.release()
    with pytest.raises(ScriptError):
        ref(4)


def test_languages_and_extensions():
    assert language_for_path("app/main.kl") == "lisp"
    assert language_for_path("x.WREN") == "wren"
    assert language_for_path("README") is None
    assert normalize_language("JS") == "javascript"


def test_shared_references_cannot_expand_without_bound():
    import pytest

    from kryon_core import ConversionError
    from kryon_core.values import to_host

    node: list = ["leaf"]
    for _ in range(40):  # 40 levels of two references to one list: 2**40 leaves once copied
        node = [node, node]
    with pytest.raises(ConversionError, match="shared references"):
        to_host(node)
    row = {"a": 1, "b": 2}
    assert len(to_host([row] * 100_000)) == 100_000  # plain repetition is fine
