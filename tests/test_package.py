"""The package's names: public functions are functions, old module paths are deprecated aliases."""

from __future__ import annotations

import importlib
import sys

import pytest

import esmscale
from esmscale._lazy import DEPRECATED_MODULES


@pytest.mark.parametrize("old", sorted(DEPRECATED_MODULES))
def test_old_module_paths_warn_and_reexport(old, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=DEPRECATED_MODULES[old].replace(".", r"\.")):
        alias = importlib.import_module(old)
    new = importlib.import_module(DEPRECATED_MODULES[old])
    assert alias.__all__ and all(getattr(alias, n) is getattr(new, n) for n in alias.__all__)


def test_public_functions_are_not_shadowed_by_modules():
    importlib.import_module("esmscale.downscaling.arrays")
    importlib.import_module("esmscale.report.evaluation")
    from esmscale.downscaling.pipeline import downscale
    from esmscale.report.evaluation import evaluate

    assert esmscale.downscale is downscale and esmscale.evaluate is evaluate
    assert callable(esmscale.downscale_array) and callable(esmscale.calibrate_noise_level)
