"""Every Examples section in visionkit's docstrings runs and gives the documented output."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import visionkit

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(visionkit.__path__, "visionkit.")
    if m.name not in {"visionkit.__main__"}
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "visionkit.backbones.open_clip" and importlib.util.find_spec("open_clip") is None:
        pytest.skip(
            "open_clip (optional extra) is not installed; .ci/run's open_clip step runs this "
            "module's examples"
        )
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
