"""Sphinx directive ``esmscale-cli``: the command-line reference, generated from the parser.

At build time the directive calls :func:`esmscale.cli.parser.build_parser` and writes one
section per command: its one-line help, its description, a table of its options (flags,
default, help) and the exact ``--help`` text. Nothing is copied by hand, so the page cannot
drift from the parser.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

WIDTH = "88"


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        return parser.format_help()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(action.option_strings) if action.option_strings else action.dest
        if action.option_strings and action.nargs != 0:
            name += f" {action.metavar or action.dest.upper()}"
        if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
            name += " {" + ",".join(map(str, action.choices)) + "}"
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            shown = ""
        elif isinstance(default, list):
            shown = " ".join(map(str, default))
        else:
            shown = str(default)
        text = (action.help or "") % {"default": default, "prog": parser.prog}
        rows.append((name, shown, text))
    return rows


def cli_rst() -> list[str]:
    """ReStructuredText lines of the whole reference."""
    from esmscale.cli.parser import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    intro = (
        "Every command, its options and examples, generated from "
        "``esmscale.cli.parser.build_parser`` when these pages are built. "
        "``esmscale COMMAND --help`` prints the same text."
    )
    lines: list[str] = [
        intro,
        "",
        ".. code-block:: text",
        "",
        *("   " + line for line in _help(parser).splitlines()),
        "",
    ]
    for name, cmd in sub.choices.items():
        title = f"esmscale {name}"
        lines += [title, "-" * len(title), "", _cell(helps.get(name, "")).capitalize() + ".", ""]
        lines += [".. list-table::", "   :header-rows: 1", "   :widths: 30 15 55", ""]
        lines += ["   * - option", "     - default", "     - meaning"]
        for flag, default, text in _option_rows(cmd):
            lines += [
                f"   * - ``{_cell(flag)}``",
                f"     - {'``' + _cell(default) + '``' if default else ''}",
                f"     - {_cell(text)}",
            ]
        lines += ["", ".. code-block:: text", ""]
        lines += ["   " + line if line else "" for line in _help(cmd).splitlines()]
        lines += [""]
    return lines


class CliReference(SphinxDirective):
    """``.. esmscale-cli::`` -- the reference of every ``esmscale`` command."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """Parse the generated reStructuredText into this document."""
        node = nodes.section()
        node.document = self.state.document
        content = StringList(cli_rst(), source="<esmscale.cli.parser>")
        nested_parse_with_titles(self.state, content, node)
        return node.children


def setup(app: Any) -> dict[str, Any]:
    """Register the directive (Sphinx extension entry point)."""
    app.add_directive("esmscale-cli", CliReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
