"""Output folders of training runs: refuse to replace a run by accident, explain a bad resume.

A training run writes ``OUT/training_state`` (checkpoints to resume from), ``OUT/model`` (the
finished model) and a few JSON files. Starting a new run in a folder that holds one would
silently replace it, so :func:`claim_run_dir` refuses unless the caller resumes or overwrites;
:func:`config_changes` names the settings that differ when a resume does not match.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from esmscale.errors import EsmscaleError

__all__ = ["claim_run_dir", "config_changes"]


def claim_run_dir(
    out: Path, entries: Sequence[str], *, resume: bool, overwrite: bool, what: str
) -> None:
    """Check that a new run may write into ``out``; with ``overwrite`` remove the old run.

    Parameters
    ----------
    out
        The run's output folder.
    entries
        Names inside ``out`` that a run writes (``model``, ``training_state``, ...); only these
        are removed by ``overwrite``, anything else in the folder is left alone.
    resume, overwrite
        The caller's flags; both at once is an error.
    what
        The kind of run, for messages (``"consistency model"``).

    Raises
    ------
    EsmscaleError
        If ``out`` holds a run and neither flag is set (nothing is touched), or if both are set.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> entries = ["model", "training_state"]
    >>> claim_run_dir(out, entries, resume=False, overwrite=False, what="model")  # empty: fine
    >>> (out / "training_state").mkdir()
    >>> _ = (out / "notes.txt").write_text("mine")
    >>> claim_run_dir(out, entries, resume=False, overwrite=False, what="consistency model")
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: '...' already holds a partly trained consistency model ...
    >>> claim_run_dir(out, entries, resume=False, overwrite=True, what="consistency model")
    >>> sorted(p.name for p in out.iterdir())  # only the run's own entries were removed
    ['notes.txt']
    """
    if resume and overwrite:
        raise EsmscaleError(
            f"{str(out)!r}: resume and overwrite were both asked for; choose one:",
            python="resume=True to continue the run there, overwrite=True to start over.",
            cli="--resume to continue the run there, --overwrite to start over.",
        )
    found = [name for name in entries if (out / name).exists()]
    if resume or not found:
        return
    if not overwrite:
        done = "model" in found
        raise EsmscaleError(
            f"{str(out)!r} already holds a {'finished' if done else 'partly trained'} {what} "
            f"({', '.join(found)}); it is left untouched.",
            python="Pass overwrite=True to replace it"
            + ("" if done else ", resume=True to continue it")
            + " or choose another output_dir.",
            cli="Add --overwrite to replace it"
            + ("" if done else ", --resume to continue it")
            + " or choose another --output.",
        )
    for name in found:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def config_changes(stored: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The settings that differ, as ``name: stored -> new`` (nested keys joined with ``.``).

    Examples
    --------
    >>> config_changes({"steps": 8, "lr": 0.1, "m": {"a": 1}}, {"steps": 16, "lr": 0.1,
    ...                                                         "m": {"a": 2}})
    'steps: 8 (stored) -> 16 (now), m.a: 1 (stored) -> 2 (now)'
    """
    return ", ".join(_changes(stored, new, ""))


def _changes(stored: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> list[str]:
    out = []
    for key in list(stored) + [k for k in new if k not in stored]:
        old, now = stored.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(old, Mapping) and isinstance(now, Mapping):
            out += _changes(old, now, f"{prefix}{key}.")
        elif old != now and not (_listlike(old) and _listlike(now) and list(old) == list(now)):
            out.append(f"{prefix}{key}: {_show(old)} (stored) -> {_show(now)} (now)")
    return out


def _listlike(value: Any) -> bool:
    return isinstance(value, list | tuple)
