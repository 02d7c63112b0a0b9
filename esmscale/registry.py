"""One registry pattern for everything chosen by name: methods, samplers, networks, checkpoints.

A :class:`Registry` maps names to objects of one kind. ``register`` works as a call or as a
decorator, a second registration of the same name is refused, and looking up an unknown name
raises an error that names the kind of thing and lists the known names.

Examples
--------
>>> colours = Registry("colour")
>>> @colours.register("red")
... def red() -> str:
...     return "#f00"
>>> colours.register("blue", lambda: "#00f")  # doctest: +ELLIPSIS
<function <lambda> at ...>
>>> colours.available()
['blue', 'red']
>>> colours.get("red")()
'#f00'
>>> colours.get("green")
Traceback (most recent call last):
...
esmscale.errors.EsmscaleError: no colour named 'green'; known colours: ['blue', 'red'].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from esmscale.errors import EsmscaleError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> objects of one ``kind`` (the word used in error messages).

    Parameters
    ----------
    kind
        What the registry holds, in the singular (``"downscaling method"``, ``"sampler"``).
    hint
        Optional sentence appended to the unknown-name error (e.g. how to add one's own).

    Examples
    --------
    >>> shapes = Registry("shape", hint="Register yours with shapes.register(name, obj).")
    >>> _ = shapes.register("disc", "o")
    >>> shapes.get("disc"), "disc" in shapes
    ('o', True)
    >>> shapes.get("cube")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: no shape named 'cube'; known shapes: ['disc']. Register ...
    """

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Add ``obj`` under ``name``; without ``obj``, return a decorator that does so.

        A name that is already registered is refused (an error naming it).
        """
        if not isinstance(name, str) or not name:
            raise EsmscaleError(f"{self.kind} names must be non-empty strings, got {name!r}.")

        def add(item: T) -> T:
            if name in self._items:
                raise EsmscaleError(
                    f"a {self.kind} named {name!r} is already registered; pick another name "
                    f"(registered: {self.available()})."
                )
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The object registered as ``name``; the error lists the known names."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            hint = f" {self.hint}" if self.hint else ""
            raise EsmscaleError(
                f"no {self.kind} named {name!r}; known {self.kind}s: {self.available()}.{hint}"
            ) from None

    def available(self) -> list[str]:
        """Sorted names of the registered objects."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """``(name, object)`` pairs, sorted by name."""
        return sorted(self._items.items())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.available())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.available()})"

    def _unregister(self, name: str) -> Any:
        """Remove ``name`` (for tests that register temporary entries)."""
        return self._items.pop(name)
