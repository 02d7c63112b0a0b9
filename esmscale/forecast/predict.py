"""Lazy forecasts over Dask: one ``dask.delayed`` task per chunk of initialisation times.

Each task receives only the history frames its init times need and a small reference to the
model; trained networks are loaded at most once per process from their checkpoint
(:func:`cached_forecaster`, lock-guarded), parameter-free baselines travel in the graph.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from esmscale._version import __version__
from esmscale.devices import autocast_dtype
from esmscale.errors import EsmscaleError
from esmscale.forecast.data import segments, time_step, to_array
from esmscale.forecast.forecaster import Forecaster, NeuralForecaster
from esmscale.io.model_cache import LOAD_COUNT, ModelRef, cached_model, model_ref
from esmscale.prepare.clipping import attach_counts, clip_negative_lazy
from esmscale.prepare.inputs import select_variable
from esmscale.prepare.physics import check_field, is_nonnegative

__all__ = [
    "LOAD_COUNT",
    "ForecasterRef",
    "cached_forecaster",
    "forecast",
    "forecaster_ref",
    "load_forecaster",
]


# forecasters share the package's load-once-per-process cache (esmscale.io.model_cache)
ForecasterRef = ModelRef


def load_forecaster(model: Forecaster | str | os.PathLike[str]) -> Forecaster:
    """A forecaster from an object or a checkpoint path.

    Examples
    --------
    >>> from esmscale.forecast import Persistence
    >>> model = Persistence()
    >>> load_forecaster(model) is model
    True
    >>> load_forecaster("no/such/folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: forecast model 'no/such/folder' is not a Forecaster and ...
    """
    if isinstance(model, Forecaster):
        return model
    if not Path(model).exists():
        raise EsmscaleError(
            f"forecast model {str(model)!r} is not a Forecaster and no such checkpoint exists; "
            "pass the result of esmscale.forecast.train/fit or a directory it saved."
        )
    return NeuralForecaster.from_pretrained(model)


def forecaster_ref(model: NeuralForecaster) -> ForecasterRef:
    """Reference for ``model``; an unsaved model is first written to a cache folder.

    Examples
    --------
    >>> from esmscale.forecast.data import Normalisation
    >>> from esmscale.models.fno import FNO2d, FNOConfig
    >>> net = FNO2d(FNOConfig(t_in=2, t_out=1, width=8, modes=2, layers=1))
    >>> model = NeuralForecaster(net, Normalisation((280.0,), (5.0,)))
    >>> ref = forecaster_ref(model)  # saves the unsaved model once
    >>> ref.sha256 == model.sha256, Path(ref.path, "model.safetensors").is_file()
    (True, True)
    """
    return model_ref(model)


def cached_forecaster(ref: ForecasterRef) -> NeuralForecaster:
    """The model for ``ref``, loaded at most once per process; the sha256 is checked.

    Examples
    --------
    >>> import tempfile
    >>> from esmscale.forecast.data import Normalisation
    >>> from esmscale.models.fno import FNO2d, FNOConfig
    >>> net = FNO2d(FNOConfig(t_in=2, t_out=1, width=8, modes=2, layers=1))
    >>> folder = NeuralForecaster(net, Normalisation((0.0,), (1.0,))).save_pretrained(
    ...     tempfile.mkdtemp()
    ... )
    >>> sha = NeuralForecaster.from_pretrained(folder).sha256
    >>> ref = ForecasterRef(str(folder), sha, NeuralForecaster)
    >>> first = cached_forecaster(ref)
    >>> cached_forecaster(ref) is first, LOAD_COUNT[ref]  # loaded once
    (True, 1)
    >>> cached_forecaster(ForecasterRef(str(folder), "0" * 64, NeuralForecaster))
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: checkpoint ... changed on disk (sha256 ... != 000...0); ...
    """
    model: NeuralForecaster = cached_model(ref)
    return model


def _chunk(
    frames: np.ndarray,
    rel: np.ndarray,
    model: Any,
    lead: int,
    targets: np.ndarray | None,
    device: dict[str, str] | None = None,
) -> np.ndarray:
    """One task: forecasts for the init times at ``rel`` (indices into ``frames``).

    ``device`` holds the ``device`` and ``precision`` of a network forecaster.
    """
    m = cached_forecaster(model) if isinstance(model, ForecasterRef) else model
    hist = np.stack([frames[i - m.t_in + 1 : i + 1] for i in rel]).astype(np.float32)
    if isinstance(m, NeuralForecaster):
        on = device or {}
        y = m.predict(
            hist,
            lead,
            targets,
            device=on.get("device", "cpu"),
            precision=on.get("precision", "fp32"),
        )
        return np.asarray(y, dtype=np.float32)
    return np.asarray(m.predict(hist, lead, targets), dtype=np.float32)


def _init_indices(times: np.ndarray, tcoord: Any, init: Any, t_in: int, name: str) -> np.ndarray:
    ok = np.zeros(times.size, dtype=bool)
    for a, b in segments(times):
        ok[a + t_in - 1 : b] = True
    if init is None:
        idx = np.flatnonzero(ok)
    else:
        if isinstance(init, slice):
            idx = np.arange(times.size)[tcoord.slice_indexer(init.start, init.stop)]
        else:
            wanted = np.atleast_1d(np.asarray(init, dtype=times.dtype))
            idx = tcoord.get_indexer(wanted)
            if (idx < 0).any():
                raise EsmscaleError(
                    f"init time(s) {wanted[idx < 0][:3].tolist()} are not in the time coordinate "
                    f"of {name!r}."
                )
        bad = idx[~ok[idx]]
        if bad.size:
            raise EsmscaleError(
                f"init time {times[bad[0]]} of {name!r} has fewer than t_in={t_in} consecutive "
                "preceding steps (start of the record or after a gap); choose later init times."
            )
    if idx.size == 0:
        raise EsmscaleError(
            f"no init time of {name!r} has t_in={t_in} consecutive preceding steps; need more "
            "time steps."
        )
    return np.asarray(idx)


def forecast(
    da: xr.DataArray | xr.Dataset,
    model: Forecaster | str | os.PathLike[str],
    *,
    lead: int | None = None,
    init: Any = None,
    chunk_size: int = 32,
    variable: str | None = None,
    check: str = "raise",
    device: str = "cpu",
    precision: str = "fp32",
) -> xr.DataArray:
    """Forecast ``lead`` steps from each init time, lazily over Dask.

    Parameters
    ----------
    da
        History with dims (time, y, x) or (time, channel, y, x); numpy- or Dask-backed.
    model
        A :class:`Forecaster` (trained network or baseline) or a saved checkpoint path.
    lead
        Number of steps to forecast (default: the model's ``t_out``, else 1); longer leads roll
        the model forward on its own output.
    init
        Init times (a time, a list or a slice); default: every time with ``t_in`` consecutive
        steps of history (never across a gap).
    chunk_size
        Init times per Dask task.
    variable
        Variable to use when ``da`` is a Dataset.
    check
        Physical check of the history (:mod:`esmscale.prepare.physics`): ``"raise"``
        (default), ``"warn"`` or ``"off"``; Dask chunks are checked when computed.
    device, precision
        Where and in which precision a network forecaster runs (:mod:`esmscale.devices`:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"auto"``; ``"fp32"``, ``"bf16"``,
        ``"fp16"``); baselines run on the host.

    Returns
    -------
    xarray.DataArray
        Dask-backed, dims ``(init_time, lead_time[, channel], y, x)``; ``lead_time`` is a
        timedelta for dated input; ``valid_time`` is a 2-D coordinate; CF attributes kept.
        NaN cells of the init frame stay NaN. Forecasts of non-negative variables
        (precipitation) are clipped at 0; the share clipped becomes the attribute
        ``esmscale_clipped_fraction`` when computed with
        :func:`esmscale.prepare.compute_clipped` or written with
        :func:`esmscale.io.zarr.write_zarr`.

    Examples
    --------
    >>> from esmscale.forecast import fit
    >>> da = xr.DataArray(np.zeros((5, 4, 4), "float32"), dims=("time", "y", "x"),
    ...                   coords={"time": np.arange(5.0)})
    >>> forecast(da, fit("persistence", da), lead=2).shape
    (5, 2, 4, 4)
    """
    da = check_field(select_variable(da, variable), check)
    m = load_forecaster(model)
    autocast_dtype(precision, device)  # an absent device or fp16 on the CPU: refused here
    run_on = {"device": device, "precision": precision}
    lead = int(lead if lead is not None else getattr(m, "t_out", 1))
    if lead < 1:
        raise EsmscaleError(f"lead={lead} must be >= 1.")
    squeeze = da.ndim == 3
    arr, times = to_array(da)
    tdim = str(arr.dims[0])
    tcoord = arr.indexes[tdim] if tdim in arr.coords else None
    if init is not None and tcoord is None:
        raise EsmscaleError(f"{da.name!r} has no {tdim!r} coordinate to select init times from.")
    idx = _init_indices(times, tcoord, init, m.t_in, str(da.name))
    step = time_step(times)
    tvals = arr[tdim].values if tdim in arr.coords else times
    leads = np.arange(1, lead + 1)
    if tvals.dtype.kind == "O":  # cftime dates: times were converted to seconds
        targets = tvals[idx][:, None] + np.array(
            [_dt.timedelta(seconds=float(step * k)) for k in leads]
        )
        lead_values = (float(step) * leads).astype("timedelta64[s]")
    else:
        targets = tvals[idx][:, None] + step * leads[None, :]
        lead_values = step * leads
    ref: Any = forecaster_ref(m) if isinstance(m, NeuralForecaster) else m
    source = arr.data
    c, h, w = arr.shape[1:]
    parts = []
    for s in range(0, idx.size, chunk_size):
        sel = idx[s : s + chunk_size]
        lo, hi = int(sel.min()) - m.t_in + 1, int(sel.max()) + 1
        task = dask.delayed(_chunk, pure=True)(
            source[lo:hi], sel - lo, ref, lead, targets[s : s + chunk_size], run_on
        )
        parts.append(dsa.from_delayed(task, shape=(sel.size, lead, c, h, w), dtype=np.float32))
    data = dsa.concatenate(parts, axis=0)
    ydim, xdim, cdim = str(arr.dims[2]), str(arr.dims[3]), str(arr.dims[1])
    if squeeze:
        data = data[:, :, 0]
    dims = ("init_time", "lead_time") + (() if squeeze else (cdim,)) + (ydim, xdim)
    coords: dict[str, Any] = {
        "init_time": ("init_time", tvals[idx]),
        "lead_time": ("lead_time", lead_values, {"long_name": "forecast lead"}),
        "valid_time": (("init_time", "lead_time"), targets),
    }
    for name in (ydim, xdim) + (() if squeeze else (cdim,)):
        if name in arr.coords:
            coords[name] = arr[name].variable
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{now}: esmscale {__version__} forecast(model={m.name!r}, lead={lead})"
    attrs = {k: v for k, v in da.attrs.items() if k != "history"}
    attrs["history"] = f"{da.attrs['history']}\n{line}" if "history" in da.attrs else line
    attrs.update(
        esmscale_version=__version__,
        esmscale_forecast_model=m.name,
        esmscale_t_in=m.t_in,
        esmscale_model_sha256=getattr(m, "sha256", None) or "",
    )
    nonneg = is_nonnegative(None if da.name is None else str(da.name), da.attrs)
    counts = None
    if nonneg:
        data, counts = clip_negative_lazy(data)
    out = xr.DataArray(data, dims=dims, coords=coords, name=da.name, attrs=attrs)
    return attach_counts(out, counts) if counts is not None else out
