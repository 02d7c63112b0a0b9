"""The worker model cache: load each checkpoint once per process, not once per Dask task.

A :class:`ModelRef` is a small, picklable reference to a checkpoint on disk that travels in
task graphs; :func:`cached_model` turns it into a model, loading the checkpoint at most once per
process (lock-guarded) and checking its sha256. :func:`model_ref` makes the reference, first
saving a model that was never saved to a cache folder (``$ESMSCALE_CACHE``, default
``<tmp>/esmscale``). Works for every class with ``save_pretrained``/``from_pretrained`` and the
``source``/``sha256`` attributes (consistency models, neural forecasters).
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esmscale.errors import EsmscaleError
from esmscale.io.checkpoint import file_sha256
from esmscale.models.consistency import ConsistencyModel

__all__ = ["LOAD_COUNT", "ModelRef", "cached_model", "install_model", "model_ref"]


@dataclass(frozen=True)
class ModelRef:
    """A small, picklable reference to a checkpoint on disk, sent to Dask tasks.

    Tasks turn it into a model with :func:`cached_model`, which loads each checkpoint once per
    process (worker), not once per task. ``cls`` is the model class (anything with
    ``from_pretrained`` returning an object with a ``sha256`` attribute).

    Examples
    --------
    >>> import pickle
    >>> from esmscale.pretrained import load_model
    >>> ref = model_ref(load_model("synthetic-pr-4x"))
    >>> pickle.loads(pickle.dumps(ref)) == ref, ref.sha256[:8]
    (True, 'c4cb5f9f')
    """

    path: str
    sha256: str
    cls: type = ConsistencyModel


_CACHE: dict[ModelRef, Any] = {}
LOAD_COUNT: dict[ModelRef, int] = {}  # checkpoint loads in this process (for diagnostics)
_LOCK = threading.Lock()


def model_ref(model: Any) -> ModelRef:
    """Reference for ``model``; a model that was never saved is written to a cache folder.

    ``model`` needs ``save_pretrained`` and the ``source``/``sha256`` attributes that
    ``from_pretrained`` sets (consistency models and neural forecasters have them).

    Examples
    --------
    >>> from esmscale.pretrained import load_model
    >>> model = load_model("synthetic-pr-4x")
    >>> ref = model_ref(model)
    >>> ref.path == model.source, ref.cls.__name__
    (True, 'ConsistencyModel')
    """
    if model.source is None or model.sha256 is None:
        cache = Path(os.environ.get("ESMSCALE_CACHE", Path(tempfile.gettempdir()) / "esmscale"))
        tmp = cache / f"unsaved-{os.getpid()}-{id(model)}"
        model.save_pretrained(tmp)
        model.sha256 = file_sha256(tmp / "model.safetensors")
        model.source = str(tmp.resolve())
    ref = ModelRef(model.source, model.sha256, type(model))
    with _LOCK:
        _CACHE.setdefault(ref, model)
    return ref


def cached_model(ref: ModelRef) -> Any:
    """The model for ``ref``, loaded at most once per process; the sha256 is checked.

    Examples
    --------
    >>> from esmscale.pretrained import load_model
    >>> ref = model_ref(load_model("synthetic-pr-4x"))
    >>> cached_model(ref) is cached_model(ref)  # one object per process
    True
    """
    with _LOCK:
        model = _CACHE.get(ref)
        if model is None:
            model = ref.cls.from_pretrained(ref.path)  # type: ignore[attr-defined]
            if model.sha256 != ref.sha256:
                raise EsmscaleError(
                    f"checkpoint {ref.path} changed on disk (sha256 {model.sha256} != "
                    f"{ref.sha256}); rerun with the current file."
                )
            _CACHE[ref] = model
            LOAD_COUNT[ref] = LOAD_COUNT.get(ref, 0) + 1
        return model


def install_model(ref: ModelRef, files: dict[str, bytes], folder: Path) -> None:
    """Put the checkpoint ``files`` of ``ref`` into this process's cache (once per process).

    Used on Dask workers (:class:`esmscale.downscaling.engine.ModelPlugin`): the files are
    written to ``folder / sha256`` and loaded like :func:`cached_model` does (sha256 checked);
    later tasks find the model by ``ref``. Nothing happens if ``ref`` is already loaded here.

    Examples
    --------
    >>> import tempfile
    >>> from esmscale.pretrained import load_model
    >>> ref = model_ref(load_model("synthetic-pr-4x"))
    >>> install_model(ref, {}, Path(tempfile.mkdtemp()))  # already loaded here: nothing to do
    >>> cached_model(ref).sha256 == ref.sha256
    True
    """
    with _LOCK:
        if ref in _CACHE:
            return
        target = folder / ref.sha256
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            if Path(name).name != name:
                raise EsmscaleError(f"checkpoint file name {name!r} is not a plain file name.")
            (target / name).write_bytes(data)
        model = ref.cls.from_pretrained(target)  # type: ignore[attr-defined]
        if model.sha256 != ref.sha256:
            raise EsmscaleError(
                f"the checkpoint sent for {ref.path} has sha256 {model.sha256}, not "
                f"{ref.sha256}; the file changed while it was sent: rerun the job."
            )
        _CACHE[ref] = model
        LOAD_COUNT[ref] = LOAD_COUNT.get(ref, 0) + 1
