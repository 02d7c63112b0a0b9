"""The documentation names what exists: every CLI command is in docs/api.md."""

from __future__ import annotations

import argparse
from pathlib import Path

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
