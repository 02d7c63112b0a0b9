"""Light package start-up: the ``.esm`` accessor without importing xarray, and API names that
share a name with a submodule.

``import esmscale`` must make ``ds.esm`` work, but must not import xarray (0.5 s) or torch
(1.5 s and more) so that ``esmscale --help`` answers at once. The accessor is therefore
registered when xarray is imported: at once if it already is, else by a one-shot import hook
that runs :mod:`esmscale.accessor` right after xarray's own module code (in the same import, so
``import xarray`` returns with the accessor in place).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["FunctionOverSubmodule", "register_accessor_with_xarray"]

_XARRAY = "xarray"


class _AccessorOnImport(importlib.abc.MetaPathFinder):
    """Finds xarray with the other finders and registers the accessor once it is executed."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _XARRAY:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        run = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            importlib.import_module("esmscale.accessor")

        loader.exec_module = exec_module  # this loader instance serves xarray only
        return spec


def register_accessor_with_xarray() -> None:
    """Register ``.esm`` now if xarray is imported, else as soon as it is."""
    if _XARRAY in sys.modules:
        importlib.import_module("esmscale.accessor")
    elif not any(isinstance(f, _AccessorOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AccessorOnImport())


class FunctionOverSubmodule:
    """A package attribute that is a function although a submodule has the same name.

    ``esmscale.downscale`` is :func:`esmscale.pipeline.downscale` while ``esmscale/downscale.py``
    also exists; importing that submodule makes the import system set the package attribute to
    the module. As a data descriptor on the package's class this attribute wins over that
    assignment (which is ignored; the module stays in ``sys.modules``), and it imports the
    function on first use.
    """

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return getattr(importlib.import_module(self.module), self.name)

    def __set__(self, obj: object, value: Any) -> None:
        if not isinstance(value, types.ModuleType):
            raise AttributeError(f"esmscale.{self.name} cannot be replaced")
