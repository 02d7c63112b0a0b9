"""Parameter-light forecast baselines: persistence, climatology, optical-flow extrapolation.

All implement :class:`~esmscale.forecast.forecaster.Forecaster` on numpy arrays; NaN cells of
the last input frame stay NaN. Optical flow uses pysteps (Lucas-Kanade motion + semi-Lagrangian
extrapolation) when it is installed, else OpenCV's Farneback flow with a backward
semi-Lagrangian advection of our own.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from typing import Any

import numpy as np
from scipy.ndimage import map_coordinates, uniform_filter1d

from esmscale.errors import EsmscaleError, MissingExtraError
from esmscale.forecast.forecaster import Forecaster

__all__ = ["Climatology", "OpticalFlow", "Persistence"]


class Persistence(Forecaster):
    """Repeat the last frame.

    Examples
    --------
    >>> Persistence().predict(np.ones((1, 1, 1, 2, 2)), lead=3).shape
    (1, 3, 1, 2, 2)
    """

    name = "persistence"
    t_in = 1

    def predict(
        self, history: np.ndarray, lead: int, target_times: np.ndarray | None = None
    ) -> np.ndarray:
        """Forecast = last frame."""
        self._check(history[:, -1:], lead)
        return np.repeat(history[:, -1:], lead, axis=1).astype(np.float32)


def _day_of_year(times: np.ndarray) -> np.ndarray | None:
    t = np.asarray(times)
    if t.dtype.kind == "M":
        days = t.astype("datetime64[D]")
        return (days - days.astype("datetime64[Y]")).astype(int)
    if t.dtype.kind == "O" and t.size and hasattr(t.flat[0], "dayofyr"):
        return np.vectorize(lambda d: d.dayofyr - 1)(t)
    return None


class Climatology(Forecaster):
    """Day-of-year mean of the training data (31-day running mean), or the overall mean.

    Examples
    --------
    >>> c = Climatology.fit(np.arange(4.0).reshape(4, 1, 1, 1), None)
    >>> float(c.predict(np.zeros((1, 1, 1, 1, 1)), lead=1)[0, 0, 0, 0, 0])
    1.5
    """

    name = "climatology"
    t_in = 1

    def __init__(self, mean: np.ndarray, by_day: np.ndarray | None) -> None:
        self.mean = mean.astype(np.float32)
        self.by_day = None if by_day is None else by_day.astype(np.float32)

    @classmethod
    def fit(cls, values: np.ndarray, times: np.ndarray | None, window: int = 31) -> Climatology:
        """Fit on ``(time, channel, y, x)`` values with their times (dates or None)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells (sea) stay NaN
            mean = np.nanmean(values, axis=0)
        doy = _day_of_year(times) if times is not None else None
        if doy is None:
            return cls(mean, None)
        sums = np.zeros((366, *values.shape[1:]))
        counts = np.zeros_like(sums)
        finite = np.isfinite(values)
        np.add.at(sums, doy, np.where(finite, values, 0.0))
        np.add.at(counts, doy, finite)
        sums = uniform_filter1d(sums, window, axis=0, mode="wrap")
        counts = uniform_filter1d(counts, window, axis=0, mode="wrap")
        with np.errstate(invalid="ignore", divide="ignore"):
            by_day = np.where(counts > 1e-6, sums / np.maximum(counts, 1e-12), mean[None])
        return cls(mean, by_day)

    def predict(
        self, history: np.ndarray, lead: int, target_times: np.ndarray | None = None
    ) -> np.ndarray:
        """Climatology at the valid times (``target_times``, ``(B, lead)``)."""
        self._check(history[:, -1:], lead)
        b = history.shape[0]
        doy = _day_of_year(target_times) if target_times is not None else None
        if self.by_day is None or doy is None:
            out = np.broadcast_to(self.mean, (b, lead, *self.mean.shape)).copy()
        else:
            out = self.by_day[np.asarray(doy).reshape(b, lead)[:, :lead]]
        nan = ~np.isfinite(history[:, -1:])
        return np.where(np.broadcast_to(nan, out.shape), np.nan, out).astype(np.float32)

    def num_parameters(self) -> int:
        """Stored climatological values."""
        return int(self.mean.size if self.by_day is None else self.by_day.size)


def _farneback(prev: np.ndarray, curr: np.ndarray) -> np.ndarray:
    import cv2

    lo, hi = np.nanmin([prev.min(), curr.min()]), np.nanmax([prev.max(), curr.max()])
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    a = ((prev - lo) * scale).astype(np.uint8)
    b = ((curr - lo) * scale).astype(np.uint8)
    # flow from b back to a: where each pixel of b came from (backward displacement)
    init = np.zeros((*a.shape, 2), np.float32)
    flow = cv2.calcOpticalFlowFarneback(b, a, init, 0.5, 3, 15, 3, 5, 1.2, 0)
    return -flow.transpose(2, 0, 1)  # forward velocity (u, v) in cells per step


def _advect(field: np.ndarray, velocity: np.ndarray, steps: int) -> np.ndarray:
    """Backward semi-Lagrangian advection of ``field`` by a constant ``velocity`` (u, v)."""
    h, w = field.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((steps, h, w), dtype=np.float32)
    for k in range(1, steps + 1):
        coords = [yy - k * velocity[1], xx - k * velocity[0]]
        out[k - 1] = map_coordinates(field, coords, order=1, mode="nearest")
    return out


class OpticalFlow(Forecaster):
    """Optical-flow extrapolation of the last frame along the motion of the last ``t_in``.

    Parameters
    ----------
    t_in
        Frames used to estimate the motion (>= 2).
    backend
        ``"auto"`` (pysteps if installed, else OpenCV), ``"pysteps"`` or ``"opencv"``.

    Examples
    --------
    A blob moving 2 cells a step to the east keeps moving east:

    >>> y, x = np.mgrid[0:32, 0:32]
    >>> blob = [np.exp(-((y - 16) ** 2 + (x - 10 - 2 * k) ** 2) / 20.0) for k in range(3)]
    >>> history = np.stack(blob)[None, :, None]  # (batch, t_in, channel, y, x)
    >>> out = OpticalFlow(t_in=3, backend="opencv").predict(history, lead=2)
    >>> out.shape, [int(np.argmax(out[0, k, 0, 16])) for k in range(2)]  # x of the peak
    ((1, 2, 1, 32, 32), [16, 18])
    """

    name = "optical_flow"

    def __init__(self, t_in: int = 3, backend: str = "auto") -> None:
        if t_in < 2:
            raise EsmscaleError(f"OpticalFlow needs t_in >= 2 frames, got {t_in}.")
        if backend == "auto":
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    import pysteps  # noqa: F401
                backend = "pysteps"
            except ImportError:
                backend = "opencv"
        if backend not in ("pysteps", "opencv"):
            raise EsmscaleError(f"OpticalFlow backend {backend!r}: use 'pysteps' or 'opencv'.")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                importlib.import_module("pysteps" if backend == "pysteps" else "cv2")
        except ImportError:
            need = "pysteps" if backend == "pysteps" else "OpenCV (cv2) or pysteps"
            raise MissingExtraError("the optical_flow forecast", need, "forecast") from None
        self.t_in, self.backend = t_in, backend

    def _one(self, frames: np.ndarray, lead: int) -> np.ndarray:
        if self.backend == "pysteps":
            with contextlib.redirect_stdout(io.StringIO()):
                from pysteps import extrapolation, motion

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pysteps: singular matrices on flat fields
                velocity = motion.get_method("LK")(frames)
                out: Any = extrapolation.get_method("semilagrangian")(frames[-1], velocity, lead)
            out = np.asarray(out, dtype=np.float32)
            return np.where(np.isfinite(out), out, frames[-1][None])
        vel = np.mean(
            [_farneback(frames[i], frames[i + 1]) for i in range(len(frames) - 1)], axis=0
        )
        return _advect(frames[-1], vel, lead)

    def predict(
        self, history: np.ndarray, lead: int, target_times: np.ndarray | None = None
    ) -> np.ndarray:
        """Extrapolate each channel of each clip; NaN cells are filled with the frame mean."""
        self._check(history, lead)
        b, _, c, h, w = history.shape
        out = np.empty((b, lead, c, h, w), dtype=np.float32)
        for i in range(b):
            for j in range(c):
                frames = np.asarray(history[i, :, j], dtype=np.float64)
                fill = np.nanmean(frames) if np.isfinite(frames).any() else 0.0
                frames = np.where(np.isfinite(frames), frames, fill)
                out[i, :, j] = self._one(frames, lead)
        nan = ~np.isfinite(history[:, -1:])
        out[np.broadcast_to(nan, out.shape)] = np.nan
        return out
