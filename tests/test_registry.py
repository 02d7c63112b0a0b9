import pytest

from esmscale.errors import EsmscaleError
from esmscale.registry import Registry


def test_register_as_call_and_as_decorator():
    reg: Registry[object] = Registry("widget")
    a = object()
    assert reg.register("a", a) is a

    @reg.register("b")
    def b() -> int:
        return 2

    assert reg.get("a") is a
    assert reg.get("b") is b
    assert reg.available() == ["a", "b"]
    assert list(reg) == ["a", "b"]
    assert len(reg) == 2
    assert "a" in reg and "c" not in reg
    assert reg.items() == [("a", a), ("b", b)]


def test_unknown_name_names_the_kind_and_lists_the_known_names():
    reg: Registry[int] = Registry("widget", hint="Register one with reg.register().")
    reg.register("zeta", 1)
    reg.register("alpha", 2)
    with pytest.raises(EsmscaleError) as err:
        reg.get("beta")
    msg = str(err.value)
    assert "no widget named 'beta'" in msg
    assert "known widgets: ['alpha', 'zeta']" in msg
    assert msg.endswith("Register one with reg.register().")
    with pytest.raises(EsmscaleError, match="no widget named"):
        reg.get(["unhashable"])  # type: ignore[arg-type]


def test_duplicate_registration_is_refused_and_keeps_the_first():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(EsmscaleError, match="widget named 'a' is already registered"):
        reg.register("a", 2)
    with pytest.raises(EsmscaleError, match="already registered"):
        reg.register("a")(3)
    assert reg.get("a") == 1


def test_names_must_be_non_empty_strings():
    reg: Registry[int] = Registry("widget")
    with pytest.raises(EsmscaleError, match="non-empty strings"):
        reg.register("", 1)
    with pytest.raises(EsmscaleError, match="non-empty strings"):
        reg.register(3, 1)  # type: ignore[arg-type]


def test_unregister_removes_an_entry():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    assert reg._unregister("a") == 1
    assert reg.available() == []


def test_indexing_is_get():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    assert reg["a"] == 1
    with pytest.raises(EsmscaleError, match="known widgets: \\['a'\\]"):
        reg["b"]
