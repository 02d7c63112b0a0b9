"""Build this documentation site: ``python docs/build.py [extra sphinx-build options]``.

Offline, every warning an error (broken links between pages included); it executes the example
gallery and the notebook. Without the ``docs`` extra it stops at once, saying what to install,
instead of Python's bare "No module named sphinx".
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

#: Modules of the ``docs`` extra and the packages that provide them.
NEEDED = {
    "sphinx": "sphinx",
    "numpydoc": "numpydoc",
    "myst_nb": "myst-nb",
    "pydata_sphinx_theme": "pydata-sphinx-theme",
    "sphinx_gallery": "sphinx-gallery",
    "sphinx_autosummary_accessors": "sphinx-autosummary-accessors",
}


def missing() -> list[str]:
    """The packages of the ``docs`` extra that cannot be imported here."""
    out = []
    for module, package in NEEDED.items():
        try:
            importlib.import_module(module)
        except ImportError:
            out.append(package)
    return out


def main(argv: list[str]) -> int:
    """Check the extra, then run sphinx-build on this folder; returns its exit status."""
    lacking = missing()
    if lacking:
        print(
            f"the documentation build needs {', '.join(lacking)}, which cannot be imported "
            'here. Install the docs extra: pip install -e ".[docs]"',
            file=sys.stderr,
        )
        return 2
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-b", "html"]
    return subprocess.call([*cmd, str(here), str(here / "_build" / "html"), *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
