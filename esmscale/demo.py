"""The demo job: downscale a synthetic coarse ESM sample with the shipped checkpoint.

The package's real workflow on a synthetic perfect-model world (no real geography; its
coordinates are arbitrary): the coarse ESM's biases (drizzle, weak heavy events) are removed by
quantile delta mapping (QDM) trained on the world's own truth against its coarse ESM over a
training period of ``train_days`` days that precede the ``days`` days shown, and the corrected
field is downscaled into an ensemble. Writes ``OUT/downscaled.zarr`` (the ensemble, with CF
attributes and provenance) and ``OUT/demo.png`` (coarse input, truth, two members, ensemble mean
and SD on one date, and the power spectra), and returns the wet-day frequency and 99th
percentile of the output, the truth and the input.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.errors import EsmscaleError
from esmscale.pretrained import load_model

__all__ = ["WET_DAY_THRESHOLD", "format_summary", "run_demo"]

#: Wet-day threshold of the demo's summary (mm day-1).
WET_DAY_THRESHOLD = 0.1
_PR_UNITS = "mm day-1"


def _stats(da: xr.DataArray) -> dict[str, float]:
    v = np.asarray(da.values, dtype=np.float64)
    v = v[np.isfinite(v)]
    wet = float(np.mean(v >= WET_DAY_THRESHOLD))
    return {"wet_day_fraction": wet, "q99": float(np.quantile(v, 0.99))}


def _field_axes(ax: Any, da: xr.DataArray, title: str, **kw: Any) -> Any:
    im = ax.pcolormesh(da["lon"], da["lat"], da, shading="nearest", **kw)
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude (degrees east)")
    ax.set_ylabel("latitude (degrees north)")
    return im


def _plot(
    path: Path,
    esm: xr.DataArray,
    out: xr.DataArray,
    truth: xr.DataArray,
    spectra: dict[str, xr.DataArray],
    *,
    corrected: bool,
) -> None:
    """Maps of the first shown day (one colour scale for input, truth and members) and PSDs."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    fig = Figure(figsize=(17, 8.2), layout="constrained")
    grid = fig.add_gridspec(2, 4)
    day = str(truth["time"].values[0])[:10]
    how = "QDM bias correction" if corrected else "no bias correction"
    fig.suptitle(
        f"esmscale demo on {day}: synthetic world (coordinates arbitrary, no real geography), "
        f"{how}, {out.sizes['member']} members"
    )
    vmax = float(np.nanquantile(truth.values, 0.995))
    field = {"vmin": 0.0, "vmax": vmax, "cmap": "Blues"}
    panels = [
        (grid[0, 0], esm.isel(time=0), "coarse ESM input" + (" (before QDM)" if corrected else "")),
        (grid[0, 1], truth.isel(time=0), "truth (high resolution)"),
        (grid[0, 2], out.isel(time=0, member=0), "member 1"),
        (grid[0, 3], out.isel(time=0, member=1), "member 2"),
        (grid[1, 0], out.isel(time=0).mean("member"), "ensemble mean"),
    ]
    axes = []
    for spec, da, title in panels:
        ax = fig.add_subplot(spec)
        im = _field_axes(ax, da, title, **field)
        axes.append(ax)
    fig.colorbar(im, ax=axes, extend="max", shrink=0.8, label=f"precipitation ({_PR_UNITS})")
    ax = fig.add_subplot(grid[1, 1])
    sd = out.isel(time=0).std("member", ddof=1)
    im = _field_axes(ax, sd, "ensemble SD", vmin=0.0, cmap="magma")
    fig.colorbar(im, ax=ax, location="bottom", shrink=0.8, label=f"ensemble SD ({_PR_UNITS})")

    ax = fig.add_subplot(grid[1, 2:])
    for label, p in spectra.items():
        style = {"color": "black", "linewidth": 2.0} if label == "truth" else {}
        ax.loglog(p["wavenumber"], p, label=label, **style)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("wavenumber (cycles per degree)")
    ax.set_ylabel(f"PSD (({_PR_UNITS})2 degree2)")
    ax.set_title(f"radially averaged PSD, mean over the {truth.sizes['time']} days shown")
    ax.legend(fontsize=9)
    fig.savefig(path, dpi=80)


def format_summary(summary: dict[str, Any]) -> str:
    """The demo's printed summary: wet-day frequency and q99 of output, truth and input.

    Examples
    --------
    >>> s = {"stats": {"truth": {"wet_day_fraction": 0.41, "q99": 30.0},
    ...                "downscaled": {"wet_day_fraction": 0.4, "q99": 28.5}}}
    >>> print(format_summary(s))
    wet days (>= 0.1 mm day-1): truth 41.0 %, downscaled 40.0 %
    99th percentile (mm day-1): truth 30.0, downscaled 28.5
    """
    st = summary["stats"]
    wet = ", ".join(f"{k} {100 * v['wet_day_fraction']:.1f} %" for k, v in st.items())
    q99 = ", ".join(f"{k} {v['q99']:.1f}" for k, v in st.items())
    return (
        f"wet days (>= {WET_DAY_THRESHOLD:g} {_PR_UNITS}): {wet}\n"
        f"99th percentile ({_PR_UNITS}): {q99}"
    )


def run_demo(
    output: str | os.PathLike[str] = "esmscale-demo",
    *,
    members: int = 4,
    days: int = 8,
    seed: int = 0,
    model: str = "synthetic-pr-4x",
    bias_correction: bool = True,
    train_days: int = 365,
) -> dict[str, Any]:
    """Run the demo through the ``.esm`` accessor and return a summary.

    Parameters
    ----------
    output
        Folder for ``downscaled.zarr`` and ``demo.png``.
    members, days, seed
        Ensemble size (>= 2), number of days shown (>= 2 with bias correction) and noise seed.
    model
        Model name or checkpoint path (a precipitation model).
    bias_correction
        Correct the coarse ESM with QDM (trained on ``train_days`` earlier days of the same
        synthetic world) before downscaling; False downscales the biased ESM as it is.
    train_days
        Length of the QDM training period (>= 100 days: QDM uses 100 quantiles).

    Returns
    -------
    dict
        ``zarr``, ``png``, ``t_star``, ``members``, ``days``, ``date`` (first day shown),
        ``bias_correction`` (``"qdm"`` or ``"none"``), ``stats`` (``truth``, ``downscaled``,
        ``coarse input`` -> ``wet_day_fraction`` (>= 0.1 mm day-1) and ``q99``) and
        ``seconds``.

    Examples
    --------
    >>> import tempfile
    >>> summary = run_demo(tempfile.mkdtemp(), members=2, days=2)
    >>> sorted(summary)  # doctest: +NORMALIZE_WHITESPACE
    ['bias_correction', 'date', 'days', 'members', 'png', 'seconds', 'stats', 't_star',
     'zarr']
    """
    import esmscale  # noqa: F401  (registers the accessor)
    from esmscale.io.zarr import is_ours, write_zarr
    from esmscale.metrics import radial_psd
    from esmscale.prepare import QDMCorrector, regrid

    if members < 2:
        raise EsmscaleError(f"members must be >= 2 for the demo's ensemble SD, got {members}.")
    if bias_correction and days < 2:
        raise EsmscaleError(
            f"days must be >= 2 with bias correction (QDM ranks each day among the days "
            f"corrected together), got {days}; or pass bias_correction=False."
        )
    if bias_correction and train_days < 100:
        raise EsmscaleError(
            f"train_days must be >= 100 (QDM uses 100 quantiles), got {train_days}; or pass "
            "bias_correction=False."
        )
    t0 = time.perf_counter()
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    cm = load_model(model)
    world = synthetic_precip(64, 64, train_days + days, seed=seed + 5000)
    esm = synthetic_esm(world, factor=cm.config.factor)["pr"]
    shown = slice(train_days, None)
    truth, coarse = world["pr"].isel(time=shown), esm.isel(time=shown)
    qdm = None
    if bias_correction:
        train = slice(0, train_days)
        ref = world["pr"].isel(time=train)
        qdm = QDMCorrector.train(ref, regrid(esm.isel(time=train), ref), seed=seed)
    kw = {"members": members, "seed": seed, "bias_correction": qdm}
    result = coarse.chunk({"time": 4}).esm.downscale(cm, **kw)
    store = out_dir / "downscaled.zarr"
    # replace an earlier demo's store, never someone else's data
    write_zarr(result, store, overwrite=is_ours(store), progress=False)
    stored = xr.open_zarr(store)["pr"].load()
    base = "qdm-bilinear" if qdm is not None else "bilinear"
    interp = coarse.esm.downscale(method=base, bias_correction=qdm).isel(member=0)
    spectra = {
        "truth": radial_psd(truth),
        "coarse ESM input": radial_psd(coarse),
        "bilinear + QDM" if qdm is not None else "bilinear": radial_psd(interp),
        "consistency model": radial_psd(stored),
    }
    png = out_dir / "demo.png"
    _plot(png, coarse, stored, truth, spectra, corrected=qdm is not None)
    return {
        "zarr": str(store),
        "png": str(png),
        "t_star": float(result.attrs["esmscale_t_star"]),
        "members": members,
        "days": days,
        "date": str(truth["time"].values[0])[:10],
        "bias_correction": "qdm" if qdm is not None else "none",
        "stats": {
            "truth": _stats(truth),
            "downscaled": _stats(stored),
            "coarse input": _stats(coarse),
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }
