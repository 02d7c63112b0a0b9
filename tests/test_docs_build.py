"""The Sphinx site builds offline with warnings as errors, and its generated pages are there.

About 40 s on 2 shared cores, so it is marked ``slow`` and ``docs``; ``.ci/run`` runs it as its
own step (``python -m pytest -m docs``). Without the docs extra it is skipped, saying what to
install; the build itself then stops with the same command (checked by a fast test).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_PACKAGES = ("sphinx", "numpydoc", "myst_parser", "sphinx_autosummary_accessors")
HAVE_DOCS = all(importlib.util.find_spec(m) for m in (*DOCS_PACKAGES, "pydata_sphinx_theme"))


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


@pytest.mark.slow
@pytest.mark.docs
@pytest.mark.skipif(not HAVE_DOCS, reason='needs the docs extra: pip install -e ".[docs]"')
def test_sphinx_build_offline_warnings_are_errors(tmp_path):
    out = tmp_path / "html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-n",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the accessor is documented as xarray's own accessors are
    assert (out / "generated" / "xarray.Dataset.esm.downscale.html").is_file()
    # the CLI reference is generated from the parser: every command and a real option
    cli = (out / "cli.html").read_text(encoding="utf-8")
    from esmscale.cli.parser import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"esmscale {name}" in cli, name
    assert "--bias-correction" in cli
    # no intersphinx inventory is fetched: the build names no remote inventory
    assert "intersphinx" not in proc.stdout + proc.stderr


def test_docs_conf_without_extra_says_what_to_install(tmp_path):
    """conf.py run where the docs packages cannot be imported names the pip command."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    for name in ("numpydoc", "myst_parser", "sphinx_autosummary_accessors", "pydata_sphinx_theme"):
        (blocker / f"{name}.py").write_text("raise ImportError('blocked for the test')\n")
    code = f"import runpy; runpy.run_path({str(ROOT / 'docs' / 'conf.py')!r})"
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env["PYTHONPATH"]])
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode != 0
    assert 'pip install -e ".[docs]"' in proc.stderr
    assert "numpydoc" in proc.stderr
