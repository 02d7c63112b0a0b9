"""The Sphinx site builds offline with warnings as errors, and its generated pages are there.

The build executes the example gallery (docs/gallery, sphinx-gallery) and the notebook
docs/examples/downscaling.ipynb (myst-nb through nbclient); an error in either fails it. About
2 minutes on 2 shared cores (the gallery about 1 minute of it), so it is marked ``slow`` and
``docs``; ``.ci/run`` runs it as its own step (``python -m pytest -m docs``). Without the docs
extra it is skipped, saying what to install; the build itself then stops with the same command
(checked by a fast test).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_PACKAGES = (
    "sphinx",
    "numpydoc",
    "myst_parser",
    "sphinx_autosummary_accessors",
    "pydata_sphinx_theme",
    "sphinx_gallery",
    "myst_nb",
    "nbclient",
    "ipykernel",
)
HAVE_DOCS = all(importlib.util.find_spec(m) for m in DOCS_PACKAGES)
GALLERY = sorted((ROOT / "docs" / "gallery").glob("plot_*.py"))
IBERIA = (
    Path(os.environ.get("ESMSCALE_DATA", ROOT.parent / "shared" / "data"))
    / "climate4r_iberia"
    / "CMIP5_Iberia_pr.nc"
)


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
    _check_gallery(out)
    _check_notebook(out)


def _check_gallery(out: Path) -> None:
    """Every example ran and drew its figures; the Iberia one says which data it used."""
    assert len(GALLERY) >= 6
    assert (out / "auto_examples" / "index.html").is_file()
    images = {p.name for p in (out / "_images").glob("sphx_glr_*.png")}
    for script in GALLERY:
        page = out / "auto_examples" / f"{script.stem}.html"
        assert page.is_file(), script.name
        assert any(name.startswith(f"sphx_glr_{script.stem}_0") for name in images), script.name
    iberia = (out / "auto_examples" / "plot_03_iberia_qdm_ensemble.html").read_text("utf-8")
    said = "real data: CNRM-CM5" if IBERIA.is_file() else "SYNTHETIC data"
    assert said in iberia
    # the evaluation example printed its scores, the forecast example its errors
    scores = (out / "auto_examples" / "plot_04_evaluation_report.html").read_text("utf-8")
    assert "consistency model" in scores and "bilinear" in scores
    pastnet = (out / "auto_examples" / "plot_05_pastnet_forecast.html").read_text("utf-8")
    assert "RMSE by lead" in pastnet


def _check_notebook(out: Path) -> None:
    """The notebook was executed during the build: its outputs are in the page."""
    page = (out / "examples" / "downscaling.html").read_text("utf-8")
    assert "esmscale_model_sha256" in page  # provenance read back from the Zarr store
    assert "wet days" in page  # the last cell's printed statistics
    assert "<img" in page  # the figure
    nb = json.loads((ROOT / "docs" / "examples" / "downscaling.ipynb").read_text("utf-8"))
    # stored outputs are not committed: what the page shows comes from this build's run
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_docs_conf_without_extra_says_what_to_install(tmp_path):
    """conf.py run where the docs packages cannot be imported names the pip command."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    blocked = (
        "numpydoc",
        "myst_parser",
        "sphinx_autosummary_accessors",
        "sphinx_gallery",
        "cartopy",
        "transformers",
    )
    for name in blocked:
        (blocker / f"{name}.py").write_text("raise ImportError('blocked for the test')\n")
    code = f"import runpy; runpy.run_path({str(ROOT / 'docs' / 'conf.py')!r})"
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env["PYTHONPATH"]])
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode != 0
    assert 'pip install -e ".[docs]"' in proc.stderr
    for package in ("numpydoc", "myst-parser", "sphinx-gallery", "cartopy", "transformers"):
        assert package in proc.stderr, package


def test_the_docs_command_without_the_extra_says_what_to_install(tmp_path):
    """`python docs/build.py` where sphinx cannot be imported stops with the pip command."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    for name in ("sphinx", "sphinx_gallery"):
        (blocker / f"{name}.py").write_text("raise ImportError('blocked for the test')\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env["PYTHONPATH"]])
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build.py")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert 'pip install -e ".[docs]"' in proc.stderr
    assert "sphinx, " in proc.stderr and "sphinx-gallery" in proc.stderr
    assert not (tmp_path / "_build").exists()
