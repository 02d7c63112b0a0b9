"""Bouncing handwritten digits (a Moving-MNIST-like set from scikit-learn's 8x8 digits).

scikit-learn ships ``load_digits()`` (1797 images of 8x8 pixels, values 0..16) with the
package, so nothing is downloaded. Digits are upscaled bilinearly, move with constant velocity
and bounce off the frame edges; overlapping digits combine by the maximum. Values in [0, 1].
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import zoom

from esmscale.datasets.navier_stokes import stack_trajectories
from esmscale.errors import EsmscaleError

__all__ = ["moving_digits"]


def _digit_images(size: int) -> np.ndarray:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise EsmscaleError("moving_digits needs scikit-learn (pip install scikit-learn).") from err
    images = load_digits().images / 16.0
    return np.clip(zoom(images, (1, size / 8, size / 8), order=1), 0.0, 1.0)


def moving_digits(
    n_samples: int = 16,
    n_frames: int = 20,
    size: int = 64,
    digits: int = 2,
    digit_size: int = 16,
    max_speed: float = 3.0,
    seed: int = 0,
    as_xarray: bool = False,
) -> np.ndarray | xr.DataArray:
    """Sequences of ``digits`` bouncing digits in a ``size x size`` frame.

    Parameters
    ----------
    n_samples, n_frames, size
        Sequences, frames per sequence and frame size in pixels.
    digits, digit_size
        Digits per sequence and their size in pixels.
    max_speed
        Largest speed in pixels per frame (speeds are uniform in ``[1, max_speed]``).
    seed
        Seed for digit choice, positions and velocities.
    as_xarray
        Return a ``(time, y, x)`` DataArray (sequences separated by time gaps).

    Examples
    --------
    >>> x = moving_digits(n_samples=2, n_frames=4, size=32, digit_size=12)
    >>> x.shape, float(x.min()) >= 0.0, float(x.max()) <= 1.0
    ((2, 4, 32, 32), True, True)
    """
    if digit_size >= size:
        raise EsmscaleError(f"digit_size={digit_size} must be smaller than size={size}.")
    rng = np.random.default_rng(seed)
    images = _digit_images(digit_size)
    out = np.zeros((n_samples, n_frames, size, size), dtype=np.float32)
    room = size - digit_size
    for s in range(n_samples):
        for _ in range(digits):
            img = images[rng.integers(len(images))]
            pos = rng.uniform(0, room, 2)
            angle = rng.uniform(0, 2 * np.pi)
            vel = rng.uniform(1.0, max_speed) * np.array([np.sin(angle), np.cos(angle)])
            for t in range(n_frames):
                y, x = np.round(pos).astype(int)
                view = out[s, t, y : y + digit_size, x : x + digit_size]
                np.maximum(view, img, out=view)
                pos = pos + vel
                for d in range(2):  # bounce off the edges
                    if pos[d] < 0 or pos[d] > room:
                        vel[d] = -vel[d]
                        pos[d] = -pos[d] if pos[d] < 0 else 2 * room - pos[d]
    if not as_xarray:
        return out
    return stack_trajectories(out, 1.0, "digits", {"long_name": "pixel intensity", "units": "1"})
