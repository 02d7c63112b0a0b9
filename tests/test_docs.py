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
