"""From a DataArray to clips: time axis checks, gaps, windows, normalisation and padding.

A forecast window is ``T_in + T_out`` consecutive time steps. Steps are consecutive when the
time coordinate advances by the regular spacing (the median difference); a larger jump is a gap
(e.g. between DJF winters) and no window ever spans one. Kernels here are numpy; only
:func:`to_array` touches xarray.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.models.modeling_utils import config_from_dict

__all__ = [
    "Normalisation",
    "pad_to_multiple",
    "segments",
    "split_dims",
    "time_step",
    "to_array",
    "window_starts",
]


def split_dims(da: xr.DataArray) -> tuple[str, str | None, str, str]:
    """``(time, channel or None, y, x)`` dimension names of a forecast DataArray.

    Examples
    --------
    >>> split_dims(xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "y", "x")))
    ('time', None, 'y', 'x')
    >>> split_dims(xr.DataArray(np.zeros((2, 1, 3, 4)), dims=("time", "var", "lat", "lon")))
    ('time', 'var', 'lat', 'lon')
    """
    if da.ndim not in (3, 4):
        raise EsmscaleError(
            f"{da.name!r} has dims {da.dims}; forecasting needs (time, y, x) or "
            "(time, channel, y, x). Select or stack the other dimensions first."
        )
    dims = [str(d) for d in da.dims]
    tdim = "time" if "time" in dims else dims[0]
    rest = [d for d in dims if d != tdim]
    y, x = rest[-2], rest[-1]
    channel = rest[0] if len(rest) == 3 else None
    return tdim, channel, y, x


def _time_values(da: xr.DataArray, tdim: str) -> np.ndarray:
    if tdim not in da.coords:
        return np.arange(da.sizes[tdim], dtype=np.float64)
    values = da[tdim].values
    if values.dtype.kind == "O":  # cftime: convert to seconds since the first time
        first = values[0]
        return np.array([(v - first).total_seconds() for v in values], dtype=np.float64)
    if values.dtype.kind not in "Mmiuf":
        raise EsmscaleError(
            f"time coordinate {tdim!r} has dtype {values.dtype}; need dates/numbers."
        )
    return values


def time_step(times: np.ndarray) -> Any:
    """Regular spacing of ``times`` (median difference; a timedelta64 for dates).

    Examples
    --------
    >>> float(time_step(np.array([0.0, 1.0, 2.0, 5.0])))  # the gap does not change the step
    1.0
    >>> time_step(np.array(["2000-01-01", "2000-01-02"], dtype="datetime64[D]"))
    np.timedelta64(1,'D')
    """
    if times.size < 2:
        return np.timedelta64(1, "D") if times.dtype.kind == "M" else 1.0
    diffs = np.diff(times)
    if (diffs <= diffs.dtype.type(0)).any():
        i = int(np.argmax(diffs <= diffs.dtype.type(0)))
        raise EsmscaleError(
            f"time coordinate is not strictly increasing at index {i + 1} ({times[i]} -> "
            f"{times[i + 1]}); sort it (da.sortby('time')) and drop duplicates."
        )
    return np.median(diffs) if diffs.dtype.kind != "m" else np.sort(diffs)[diffs.size // 2]


def segments(times: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs ``[start, stop)`` of ``times``; a jump over 1.5x the step is a gap.

    Examples
    --------
    >>> segments(np.array([0.0, 1, 2, 10, 11]))
    [(0, 3), (3, 5)]
    """
    if times.size == 0:
        return []
    step = time_step(times)
    diffs = np.diff(times)
    breaks = np.flatnonzero(diffs > step * 1.5) + 1
    edges = [0, *breaks.tolist(), int(times.size)]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def window_starts(
    segs: list[tuple[int, int]], length: int, lo: int = 0, hi: int | None = None
) -> np.ndarray:
    """Start indices of windows of ``length`` steps inside one segment and inside ``[lo, hi)``.

    Examples
    --------
    >>> window_starts([(0, 4), (4, 9)], 3).tolist()
    [0, 1, 4, 5, 6]
    """
    out = []
    for start, stop in segs:
        a, b = max(start, lo), min(stop, hi if hi is not None else stop)
        if b - a >= length:
            out.append(np.arange(a, b - length + 1))
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def to_array(da: xr.DataArray) -> tuple[xr.DataArray, np.ndarray]:
    """Transpose to ``(time, channel, y, x)`` (adding a channel of size 1) and get times.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "y", "x"),
    ...                   coords={"time": [0.0, 1.0]})
    >>> arr, times = to_array(da)
    >>> arr.dims, times.tolist()
    (('time', 'channel', 'y', 'x'), [0.0, 1.0])
    """
    tdim, channel, y, x = split_dims(da)
    if channel is None:
        da = da.expand_dims("channel", axis=1)
        channel = "channel"
    da = da.transpose(tdim, channel, y, x)
    return da, _time_values(da, tdim)


@dataclass(frozen=True)
class Normalisation:
    """Per-channel standardisation; NaN cells become 0 (the mean) for the network.

    Examples
    --------
    >>> x = np.array([[[[1.0, np.nan]]], [[[3.0, 2.0]]]])
    >>> n = Normalisation.fit(x)
    >>> n.forward(x)[0, 0, 0].tolist()
    [-1.2247447967529297, 0.0]
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, values: np.ndarray) -> Normalisation:
        """Mean and std per channel of ``(time, channel, y, x)`` values, ignoring NaN."""
        v = np.asarray(values, dtype=np.float64)
        if not np.isfinite(v).any(axis=(0, 2, 3)).all():
            raise EsmscaleError("a channel has no finite value in the training period.")
        mean = np.nanmean(v, axis=(0, 2, 3))
        std = np.nanstd(v, axis=(0, 2, 3))
        std = np.where(std > 0, std, 1.0)
        return cls(tuple(map(float, mean)), tuple(map(float, std)))

    def _shape(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(self.mean),) + (1,) * 2
        m = np.asarray(self.mean, np.float32).reshape(shape)
        s = np.asarray(self.std, np.float32).reshape(shape)
        return m, s

    def forward(self, values: np.ndarray) -> np.ndarray:
        """Standardise ``(..., channel, y, x)`` values; NaN -> 0."""
        m, s = self._shape(values.ndim)
        out = (np.asarray(values, np.float32) - m) / s
        return np.where(np.isfinite(out), out, np.float32(0.0)).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Back to physical units."""
        m, s = self._shape(values.ndim)
        return (np.asarray(values, np.float32) * s + m).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalisation:
        """Inverse of :meth:`to_dict`."""
        return config_from_dict(cls, d, tuples=("mean", "std"))


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Zero-pad the last two axes at the end up to multiples of ``multiple``.

    Examples
    --------
    >>> pad_to_multiple(np.ones((2, 5, 6)), 4).shape
    (2, 8, 8)
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(x, pad)
