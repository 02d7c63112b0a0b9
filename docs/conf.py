"""Sphinx configuration of the esmscale documentation.

Build (offline, warnings are errors)::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

No intersphinx (nothing is downloaded); ``-n`` (nitpicky) turns every cross-reference that
does not resolve, including links between pages, into an error: that is the internal link check.
References to other packages' objects (``xarray.Dataset``, ``numpy.ndarray``, ...) are not
links here and are ignored by name (``nitpick_ignore_regex``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "_ext"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Offline coastlines for the gallery's maps (Debian's python-cartopy-data): Cartopy downloads
# nothing when its data is found here.
os.environ.setdefault("CARTOPY_DATA_DIR", "/usr/share/cartopy/data")

_MISSING = []
for _module, _package in (
    ("numpydoc", "numpydoc"),
    ("myst_parser", "myst-parser"),
    ("sphinx_autosummary_accessors", "sphinx-autosummary-accessors"),
    ("pydata_sphinx_theme", "pydata-sphinx-theme"),
    ("sphinx_gallery", "sphinx-gallery"),
    ("myst_nb", "myst-nb"),
    ("nbclient", "nbclient"),
    ("ipykernel", "ipykernel"),
    ("cartopy", "cartopy"),  # the gallery's maps
    ("transformers", "transformers"),  # the gallery's visionkit example
):
    try:
        __import__(_module)
    except ImportError:
        _MISSING.append(_package)
if _MISSING:
    raise ImportError(
        f"building the docs needs {', '.join(_MISSING)}, which are not installed; install the "
        'docs extra: pip install -e ".[docs]"'
    )

import sphinx_autosummary_accessors  # noqa: E402

import esmscale  # noqa: E402  (registers the .esm accessor on xarray objects)
from esmscale.errors import EsmscaleError  # noqa: E402
from esmscale.report.maps import find_coastlines  # noqa: E402

try:  # the gallery's maps draw offline coastlines; say what to install before building
    find_coastlines()
except EsmscaleError as err:
    raise RuntimeError(
        f"the example gallery's maps need offline coastlines: {err.message}"
    ) from None

project = "esmscale"
author = "esmscale developers"
copyright = "2026, esmscale developers"
release = esmscale.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_nb",  # MyST Markdown pages (myst-parser) and the executed notebook
    "sphinx_autosummary_accessors",
    "sphinx_gallery.gen_gallery",
    "cli_reference",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "**/.ipynb_checkpoints",
    "Thumbs.db",
    ".DS_Store",
    "gallery/README.rst",  # sphinx-gallery turns it into auto_examples/index
    "auto_examples/*.ipynb",  # the gallery's downloadable notebooks (not pages)
    "auto_examples/*.py",
]
templates_path = ["_templates", sphinx_autosummary_accessors.templates_path]

# MyST: Markdown pages with dollar maths, definition lists, heading anchors for [](#...) links.
myst_enable_extensions = ["dollarmath", "amsmath", "deflist", "colon_fence"]
myst_heading_anchors = 3

# The notebook (docs/examples/*.ipynb) is executed on every build, offline (nbclient, a local
# ipykernel); an error in any cell fails the build. Its stored outputs are ignored.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
nb_merge_streams = True

# The example gallery (docs/gallery/plot_*.py), executed during the build (sphinx-gallery, in
# this process: imports are paid once). Any error in an example fails the build.
sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    # sphinx-gallery's matplotlib scraper after docs/_ext/figure_checks.py: a figure with an
    # unlabelled axis, a field without a colour bar or a rainbow colour map fails the build
    "image_scrapers": ("figure_checks.checked_matplotlib_scraper",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "show_signature": False,
    "backreferences_dir": None,
    "doc_module": (),
    "min_reported_time": 0,
    # always execute: a cached result of an unchanged example could hide a change in the package
    "run_stale_examples": True,
}

# API reference from the docstrings.
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters section says the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Offline: no intersphinx; a broken cross-reference inside the docs is an error (-n -W).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(xarray|xr|numpy|np|pandas|pd|torch|dask|distributed|argparse|os|pathlib)\..*"),
    (r"py:.*", r"(intake_esm|diffusers|xsdba|safetensors|matplotlib|typing|collections)\..*"),
    # Docstrings name internal modules and functions that the API reference does not list;
    # tests/test_docs.py checks that every such esmscale name imports, instead.
    (r"py:.*", r"esmscale\..*"),
    # a class's docstring naming its own methods (:meth:`to_dict`), also in summary tables
    (r"py:meth", r"[A-Za-z_]+"),
]
suppress_warnings = ["myst.header"]  # pages may start at any heading level

html_theme = "pydata_sphinx_theme"
html_title = f"esmscale {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []
# The figures the pages embed live in docs/figures and are copied by Sphinx as images.
