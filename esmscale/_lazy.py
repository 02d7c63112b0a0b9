"""Light package start-up: the ``.esm`` accessor without importing xarray, and the deprecated
old module paths.

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
import warnings
from collections.abc import Sequence
from typing import Any

__all__ = ["DEPRECATED_MODULES", "register_accessor_with_xarray", "register_deprecated_modules"]

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


#: Old module paths -> their new homes (issue 10); importable for one release with a warning.
DEPRECATED_MODULES = {
    "esmscale.pipeline": "esmscale.downscaling.pipeline",
    "esmscale.tiling": "esmscale.downscaling.tiling",
    "esmscale.methods": "esmscale.downscaling.methods",
    "esmscale.calibration": "esmscale.downscaling.calibration",
    "esmscale.training": "esmscale.downscaling.training",
}


class _DeprecatedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the old module paths: a module that warns once and re-exports the new one.

    No file sits at the old paths (so that nothing can grow there again); importing
    ``esmscale.pipeline`` gives a module whose names are those of
    :mod:`esmscale.downscaling.pipeline`, after a :class:`DeprecationWarning` naming the new path.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in DEPRECATED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        new = DEPRECATED_MODULES[module.__name__]
        warnings.warn(
            f"{module.__name__} is deprecated and will be removed in the next release; "
            f"import from {new} instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        target = importlib.import_module(new)
        names = getattr(target, "__all__", [n for n in vars(target) if not n.startswith("_")])
        module.__dict__.update({n: getattr(target, n) for n in names})
        setattr(module, "__all__", list(names))  # noqa: B010
        module.__doc__ = f"Deprecated alias of :mod:`{new}`."

        def forward(name: str) -> Any:  # private names too, for old pickles and tests
            return getattr(target, name)

        module.__getattr__ = forward  # type: ignore[method-assign]


def register_deprecated_modules() -> None:
    """Make the old module paths (:data:`DEPRECATED_MODULES`) importable, with a warning."""
    if not any(isinstance(f, _DeprecatedModule) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeprecatedModule())  # before finders of stale installs
