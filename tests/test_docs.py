"""The documentation names what exists: every CLI command is in docs/api.md."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from esmscale.cli import build_parser

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_api_md_lists_every_command():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [name for name in sub.choices if f"| `esmscale {name}" not in text]
    assert not missing, f"docs/api.md's command table lacks {missing}"


def _cross_references() -> set[str]:
    import re

    pattern = re.compile(r":(?:func|mod|class|meth|attr|data|obj):`~?(esmscale\.[\w.]+)`")
    names: set[str] = set()
    for path in (DOCS.parent / "esmscale").rglob("*.py"):
        names.update(pattern.findall(path.read_text(encoding="utf-8")))
    return names


def test_docstring_cross_references_import():
    """Every ``:func:`esmscale.x.y``` in a docstring names something that exists.

    The Sphinx build does not resolve references to objects outside the API reference pages
    (docs/conf.py ignores them by name), so this test checks them by importing.
    """
    import importlib

    names = _cross_references()
    assert len(names) > 20
    broken = []
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                broken.append(name)
            break
        else:
            broken.append(name)
    assert not broken, f"docstrings name objects that do not exist: {broken}"


def _figure_checks():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "figure_checks.py"
    spec = importlib.util.spec_from_file_location("figure_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.figure_problems


def test_gallery_figure_checks_catch_unlabelled_figures():
    """The gallery's figure check (docs/_ext/figure_checks.py) passes a figure a reader can
    read and names what is missing from one that is not."""
    import numpy as np
    from matplotlib.figure import Figure

    figure_problems = _figure_checks()
    field = np.arange(12.0).reshape(3, 4)

    good = Figure()
    ax1, ax2, ax3 = good.subplots(1, 3)
    im = ax1.pcolormesh(field, cmap="Blues", vmin=0, vmax=11)
    ax2.pcolormesh(field + 1, cmap="Blues", vmin=0, vmax=11)  # shares the colour bar's scale
    for ax in (ax1, ax2):
        ax.set(xlabel="longitude (degrees east)", ylabel="latitude (degrees north)")
    good.colorbar(im, ax=[ax1, ax2], label="precipitation (mm day-1)")
    ax3.plot([1, 2, 3], [0.1, 0.2, 0.3])
    ax3.set_xticks([1, 2, 3], ["a", "b", "c"])  # named categories: a label, no units
    ax3.set(xlabel="method", ylabel="CRPS (mm day-1)")
    assert figure_problems(good) == []

    bad = Figure()
    ax1, ax2 = bad.subplots(1, 2)
    ax1.pcolormesh(field, cmap="jet")
    ax2.plot([0, 1], [0, 1])
    ax2.set(xlabel="lead", ylabel="RMSE (1)")
    problems = figure_problems(bad)
    text = "\n".join(problems)
    assert "axes 1 (untitled): the x axis has no label" in text
    assert "rainbow colour map 'jet'" in text
    assert "without a colour bar" in text
    assert "'lead' gives no units" in text
    assert len(problems) == 5, problems


# Public functions and classes (in a module's ``__all__``) whose docstring has no Examples
# section yet, as of the issue-16 audit. The list may only shrink: a new public name needs an
# example, and a name that gains one must leave the list.
EXAMPLES_TODO = Path(__file__).resolve().parent / "docstring_examples_todo.txt"


def _public_objects():
    import importlib
    import inspect
    import pkgutil
    import warnings

    import esmscale
    import visionkit

    for package in (esmscale, visionkit):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if any(part.startswith("_") for part in info.name.split(".")[1:]):
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                module = importlib.import_module(info.name)
            if any(str(w.message).startswith(f"{info.name} is deprecated") for w in caught):
                continue  # a deprecated alias of a module checked under its new name
            for name in getattr(module, "__all__", []):
                obj = getattr(module, name, None)
                if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                    continue
                if getattr(obj, "__module__", None) != info.name:
                    continue  # re-exported: checked where it is defined
                yield f"{info.name}.{name}", inspect.getdoc(obj) or ""


def test_public_functions_have_docstring_examples():
    todo = {
        line.strip()
        for line in EXAMPLES_TODO.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    missing = {name for name, doc in _public_objects() if "Examples" not in doc}
    new = sorted(missing - todo)
    assert not new, f"public names without an Examples section in their docstring: {new}"
    done = sorted(todo - missing)
    assert not done, (
        f"these have examples now (or are gone): remove them from {EXAMPLES_TODO.name}: {done}"
    )


def test_gallery_scraper_refuses_a_bad_figure_before_saving_it(tmp_path):
    """The scraper named in docs/conf.py raises, naming the example, and saves nothing."""
    import importlib.util

    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    path = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "figure_checks.py"
    spec = importlib.util.spec_from_file_location("figure_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plt.close("all")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    try:
        block_vars = {"src_file": "plot_x.py", "image_path_iterator": iter([tmp_path / "a.png"])}
        with pytest.raises(ValueError, match=r"plot_x.py: figure 1 is not ready.*no label"):
            module.checked_matplotlib_scraper(None, block_vars, {})
        assert not list(tmp_path.iterdir())
    finally:
        plt.close(fig)
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert '"image_scrapers": ("figure_checks.checked_matplotlib_scraper",)' in conf


def test_accessor_methods_have_numpydoc_sections_and_examples():
    """``Dataset.esm.downscale`` and the other accessor methods have pages of their own in the
    API reference (docs/api_reference.rst): each docstring has Parameters, Returns and an
    Examples section (run by the doctests)."""
    import inspect

    from esmscale.accessor import EsmAccessor

    methods = {
        name: inspect.getdoc(member) or ""
        for name, member in vars(EsmAccessor).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert {"downscale", "calibrate", "psd", "forecast", "train_forecaster"} <= set(methods)
    lacking = {
        name: [s for s in ("Parameters", "Returns", "Examples") if f"{s}\n---" not in doc]
        for name, doc in methods.items()
    }
    assert not {k: v for k, v in lacking.items() if v}, lacking
