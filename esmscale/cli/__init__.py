"""Command-line interface: ``esmscale <command>``. Parses arguments and calls the API only.

:mod:`esmscale.cli.parser` builds the parser and imports nothing heavy, so that ``esmscale
--help`` answers at once; :mod:`esmscale.cli.commands` runs the commands and imports torch,
xarray and dask inside them. Errors are printed as one line in command-line terms
(:meth:`esmscale.errors.EsmscaleError.for_cli`) with exit status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from esmscale.cli.parser import build_parser
from esmscale.errors import EsmscaleError

__all__ = ["build_parser", "main"]

#: Optional modules -> the pip extra that installs them.
EXTRAS = {
    "cv2": "forecast",
    "pysteps": "forecast",
    "sklearn": "forecast",
    "cartopy": "viz",
    "intake_esm": "catalog",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``esmscale`` command; returns the exit status.

    Parameters
    ----------
    argv
        The arguments after ``esmscale``; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on an error (one line on stderr), 130 after Ctrl-C.

    Examples
    --------
    >>> main(["models"])  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    name ... training data
    synthetic-pr-4x  pr  mm day-1  0.25 deg  4  0.25 ...
    0
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(args_list)
    args.argv = args_list
    prefix = f"esmscale {args.command}"
    try:
        from esmscale.cli import commands

        getattr(commands, args.run)(args)
    except EsmscaleError as err:
        print(f"{prefix}: error: {err.for_cli()}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        missing = (err.name or "").partition(".")[0]
        if missing not in EXTRAS:
            raise
        print(
            f"{prefix}: error: this needs {missing}, which is not installed; install it with: "
            f'pip install "esmscale[{EXTRAS[missing]}]"',
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as err:
        print(f"{prefix}: interrupted{f'; {err}' if str(err) else ''}", file=sys.stderr)
        return 130
    return 0
