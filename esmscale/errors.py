"""Exception and warning types raised by esmscale.

An error says what is wrong, where, and how to fix it. The fix depends on the interface: a
Python caller passes ``overwrite=True`` where a command-line user adds ``--overwrite``. Errors
whose fix is an argument therefore carry both forms: ``str(err)`` ends with the Python fix and
:meth:`EsmscaleError.for_cli` with the command-line one, which is what ``esmscale`` prints.

>>> err = EsmscaleError("'out.zarr' already holds a store;", python="pass overwrite=True.",
...                     cli="add --overwrite.")
>>> str(err)
"'out.zarr' already holds a store; pass overwrite=True."
>>> err.for_cli()
"'out.zarr' already holds a store; add --overwrite."
"""

from __future__ import annotations

__all__ = ["CheckpointError", "EsmscaleError", "EsmscaleWarning", "MissingExtraError"]


def _join(message: str, fix: str) -> str:
    return f"{message} {fix}" if message and fix else message or fix


class EsmscaleError(ValueError):
    """Invalid input or state; the message says what is wrong, where, and how to fix it.

    Parameters
    ----------
    message
        What is wrong and where (with the fix when it reads the same in Python and on the
        command line).
    python, cli
        The fix in Python terms (``"pass overwrite=True to replace it."``) and in command-line
        terms (``"add --overwrite to replace it."``); ``cli`` defaults to ``python``. The Python
        fix is appended to ``str(err)``, the command-line one to :meth:`for_cli`.

    Examples
    --------
    >>> err = EsmscaleError("members must be >= 1, got 0;", python="pass members=4.",
    ...                     cli="add --members 4.")
    >>> str(err)
    'members must be >= 1, got 0; pass members=4.'
    >>> err.for_cli()
    'members must be >= 1, got 0; add --members 4.'
    >>> isinstance(err, ValueError)  # catch it as a ValueError too
    True
    """

    def __init__(self, message: str, *, python: str = "", cli: str = "") -> None:
        super().__init__(_join(message, python))
        self.message = message
        self.python_fix = python
        self.cli_fix = cli or python

    def for_cli(self) -> str:
        """The message with the command-line form of the fix (what ``esmscale`` prints)."""
        return _join(self.message, self.cli_fix)


class CheckpointError(EsmscaleError):
    """A checkpoint cannot be read safely (pickle, corrupt, wrong format version).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from esmscale.io.checkpoint import read_checkpoint
    >>> bad = Path(tempfile.mkdtemp()) / "model.safetensors"
    >>> _ = bad.write_bytes(b"not a checkpoint")
    >>> try:
    ...     read_checkpoint(bad)
    ... except CheckpointError as err:
    ...     print(type(err).__name__, isinstance(err, EsmscaleError))
    CheckpointError True
    """


class MissingExtraError(EsmscaleError, ImportError):
    """An optional dependency is missing; the message names the pip extra that provides it.

    Examples
    --------
    >>> err = MissingExtraError("optical_flow", "cv2 (OpenCV)", "forecast")
    >>> str(err).endswith('install it with: pip install "esmscale[forecast]"')
    True
    >>> isinstance(err, ImportError), err.extra
    (True, 'forecast')
    """

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs {module}, which is not installed; install it with: "
            f'pip install "esmscale[{extra}]"'
        )
        self.extra = extra


class EsmscaleWarning(UserWarning):
    """Warning emitted by esmscale (an error in the package's own tests).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("chunks of 8 cells are below the halo; using 16", EsmscaleWarning)
    >>> caught[0].category.__name__, issubclass(EsmscaleWarning, UserWarning)
    ('EsmscaleWarning', True)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", EsmscaleWarning)  # as the test suite runs
    ...     warnings.warn("a doubtful input", EsmscaleWarning)
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleWarning: a doubtful input
    """


class PhysicalCheckError(EsmscaleError):
    """Physically impossible input values; see :mod:`esmscale.prepare.physics`.

    Negative precipitation, temperatures outside a physical range, infinities and fill values
    that leaked through.
    """
