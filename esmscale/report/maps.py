"""Map figures, with coastlines drawn offline from Cartopy's GSHHS shapefiles.

Cartopy downloads Natural Earth data the first time ``ax.coastlines()`` is drawn, which fails
without internet. The GSHHS coastlines shipped by Debian's ``python-cartopy-data`` package
(``/usr/share/cartopy/data``) or found under ``$CARTOPY_DATA_DIR`` are used instead:
:func:`find_coastlines` looks for them before anything is drawn. :func:`resolve_coastlines`
is what :func:`esmscale.evaluate` uses: without Cartopy or without the data it warns once and
the maps are drawn on plain latitude/longitude axes; Cartopy's own download is used only when
allowed (``download=True`` or ``ESMSCALE_DOWNLOAD_COASTLINES=1``). Synthetic fields
(:func:`is_synthetic`) have no real location and never get coastlines.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from esmscale.errors import EsmscaleError, EsmscaleWarning

__all__ = [
    "DEBIAN_DATA_DIR",
    "DOWNLOAD_ENV",
    "Coastlines",
    "MapPanel",
    "find_coastlines",
    "is_synthetic",
    "plot_maps",
    "resolve_coastlines",
]

#: Where Debian's ``python-cartopy-data`` package installs Cartopy's data.
DEBIAN_DATA_DIR = Path("/usr/share/cartopy/data")
_SCALES = ("l", "c")  # GSHHS "low" then "crude" resolution, level 1 = land/ocean boundary
#: Set to 1 to let Cartopy download Natural Earth coastlines when no offline data is found.
DOWNLOAD_ENV = "ESMSCALE_DOWNLOAD_COASTLINES"
_OFFLINE_HINT = (
    "offline coastlines come from Debian's python-cartopy-data package with "
    f"CARTOPY_DATA_DIR={DEBIAN_DATA_DIR} (or GSHHS_c_L1.shp with .shx/.dbf under "
    "$CARTOPY_DATA_DIR/shapefiles/gshhs/c/); to let Cartopy download Natural Earth coastlines "
    f"instead, pass download_coastlines=True or set {DOWNLOAD_ENV}=1"
)
_HOW_TO_INSTALL = (
    "Install Cartopy (pip install 'esmscale[viz]') and its offline coastline data: on "
    "Debian/Ubuntu 'apt-get install python-cartopy-data' (GSHHS shapefiles in "
    f"{DEBIAN_DATA_DIR}); elsewhere put GSHHS_c_L1.shp (with .shx/.dbf) under "
    "$CARTOPY_DATA_DIR/shapefiles/gshhs/c/ and set CARTOPY_DATA_DIR."
)
#: The other way out, for Python callers and for the command line.
_WITHOUT = {
    "python": "Or pass maps=False to draw the maps without coastlines.",
    "cli": "Or add --no-coastlines to draw the maps without coastlines.",
}


@dataclass(frozen=True)
class Coastlines:
    """Where coastlines come from: a Cartopy data folder and the GSHHS scale.

    ``download=True`` means no offline data: Cartopy's Natural Earth coastlines, which Cartopy
    downloads when first drawn (only when the user allowed it).

    Examples
    --------
    >>> coast = Coastlines(Path("/usr/share/cartopy/data"), "c")
    >>> coast.shapefile.name, coast.download
    ('GSHHS_c_L1.shp', False)
    """

    data_dir: Path
    scale: str
    download: bool = False

    @property
    def shapefile(self) -> Path:
        """The level-1 (coastline) shapefile."""
        return self.data_dir / "shapefiles" / "gshhs" / self.scale / f"GSHHS_{self.scale}_L1.shp"


def _candidate_dirs(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir)]
    import cartopy

    dirs = []
    env = os.environ.get("CARTOPY_DATA_DIR")
    if env:
        dirs.append(Path(env))
    for key in ("pre_existing_data_dir", "data_dir"):
        value = cartopy.config.get(key)
        if value and str(value) not in ("", "."):
            dirs.append(Path(value))
    dirs.append(DEBIAN_DATA_DIR)
    return list(dict.fromkeys(dirs))


def find_coastlines(data_dir: str | os.PathLike[str] | None = None) -> Coastlines:
    """Locate Cartopy and offline GSHHS coastlines, or explain how to install them.

    Parameters
    ----------
    data_dir
        A Cartopy data folder to use; default: ``$CARTOPY_DATA_DIR``, Cartopy's configured
        folders, then ``/usr/share/cartopy/data``.

    Raises
    ------
    EsmscaleError
        If Cartopy cannot be imported or no ``shapefiles/gshhs/{l,c}/GSHHS_*_L1.shp`` exists.

    Examples
    --------
    >>> try:
    ...     find_coastlines("/nonexistent")
    ... except EsmscaleError as err:
    ...     print(str(err)[:38])
    no offline GSHHS coastlines were found
    """
    try:
        import cartopy  # noqa: F401
    except ImportError as err:
        raise EsmscaleError(
            f"maps with coastlines need Cartopy, which cannot be imported ({err}). "
            + _HOW_TO_INSTALL,
            **_WITHOUT,
        ) from None
    looked = []
    for d in _candidate_dirs(data_dir):
        for scale in _SCALES:
            found = Coastlines(d, scale)
            if found.shapefile.is_file():
                return found
            looked.append(str(found.shapefile))
    raise EsmscaleError(
        "no offline GSHHS coastlines were found (Cartopy would try to download Natural Earth "
        f"data, which fails offline); looked for {', '.join(looked)}. " + _HOW_TO_INSTALL,
        **_WITHOUT,
    )


def is_synthetic(obj: xr.DataArray | xr.Dataset) -> bool:
    """Whether ``obj`` comes from :mod:`esmscale.datasets.synthetic` (no real location).

    The synthetic datasets mark themselves with ``source = "esmscale.datasets.synthetic_*"``
    (dataset attribute) and a ``long_name`` starting with "synthetic" (variable attribute, kept
    by selection, the synthetic ESM and downscaling).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> ds = synthetic_precip(8, 8, 1)
    >>> is_synthetic(ds), is_synthetic(ds.pr), is_synthetic(ds.pr.assign_attrs(long_name="pr"))
    (True, True, False)
    """
    source = str(obj.attrs.get("source", ""))
    long_name = str(obj.attrs.get("long_name", "")).strip().lower()
    return source.startswith("esmscale.datasets.synthetic") or long_name.startswith("synthetic")


def resolve_coastlines(
    data_dir: str | os.PathLike[str] | None = None, *, download: bool | None = None
) -> Coastlines | None:
    """Coastlines for the maps, or None (with one :class:`EsmscaleWarning` saying why).

    Parameters
    ----------
    data_dir
        A Cartopy data folder to search instead of the default ones (see
        :func:`find_coastlines`).
    download
        Allow Cartopy to download Natural Earth coastlines when no offline data is found;
        default: ``$ESMSCALE_DOWNLOAD_COASTLINES`` is 1 (off otherwise).

    Examples
    --------
    >>> import tempfile, warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     resolve_coastlines(tempfile.mkdtemp())
    >>> len(caught), "python-cartopy-data" in str(caught[0].message)
    (1, True)
    """
    import warnings

    if download is None:
        download = os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")
    try:
        return find_coastlines(data_dir)
    except EsmscaleError as err:
        reason = str(err).split(". ", 1)[0]
    if "cannot be imported" in reason:
        reason = "Cartopy cannot be imported (install it with pip install 'esmscale[viz]')"
    elif download:
        return Coastlines(Path(data_dir or "."), "110m", download=True)
    warnings.warn(
        f"maps drawn without coastlines: {reason}. The {_OFFLINE_HINT}.",
        EsmscaleWarning,
        stacklevel=2,
    )
    return None


@contextlib.contextmanager
def _offline(coast: Coastlines) -> Iterator[Any]:
    """Point Cartopy at ``coast.data_dir`` and silence pyshp's per-shape notes, then restore."""
    import cartopy
    import cartopy.feature

    try:
        import shapefile
    except ImportError:  # pragma: no cover - pyshp is a Cartopy dependency
        shapefile = None
    old_dir = cartopy.config.get("pre_existing_data_dir")
    old_verbose = getattr(shapefile, "VERBOSE", None)
    if not coast.download:
        cartopy.config["pre_existing_data_dir"] = coast.data_dir
    if shapefile is not None:
        shapefile.VERBOSE = False
    try:
        if coast.download:  # Natural Earth, downloaded by Cartopy when drawn
            yield cartopy.feature.COASTLINE
        else:
            yield cartopy.feature.GSHHSFeature(scale=coast.scale, levels=[1])
    finally:
        cartopy.config["pre_existing_data_dir"] = old_dir
        if shapefile is not None and old_verbose is not None:
            shapefile.VERBOSE = old_verbose


@dataclass(frozen=True)
class MapPanel:
    """One map: a 2-D ``(lat, lon)`` field, its title and how to colour it.

    ``kind``: ``"field"`` panels share one colour scale; ``"spread"`` (e.g. ensemble SD) starts
    at 0; ``"diff"`` (e.g. a bias) is symmetric around 0.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> da = xr.DataArray(np.random.default_rng(0).gamma(1.0, 2.0, (8, 8)), dims=("lat", "lon"),
    ...                   coords={"lat": np.arange(8.0), "lon": np.arange(8.0)})
    >>> panels = [MapPanel("field", da), MapPanel("bias", da - da.mean(), kind="diff")]
    >>> png = Path(tempfile.mkdtemp()) / "maps.png"
    >>> _ = plot_maps(png, panels, title="example", units="mm day-1")
    >>> png.is_file()
    True
    """

    title: str
    data: xr.DataArray
    kind: Literal["field", "spread", "diff"] = "field"


def _edges(c: np.ndarray) -> tuple[float, float]:
    c = np.asarray(c, dtype=np.float64)
    half = abs(float(c[1] - c[0])) / 2 if c.size > 1 else 0.5
    return float(c.min()) - half, float(c.max()) + half


def _limits(panels: Sequence[MapPanel], kind: str) -> tuple[float, float]:
    vals = [np.asarray(p.data.values, dtype=np.float64) for p in panels if p.kind == kind]
    finite = np.concatenate([v[np.isfinite(v)] for v in vals]) if vals else np.empty(0)
    if finite.size == 0:
        return 0.0, 1.0
    if kind == "diff":
        m = float(np.quantile(np.abs(finite), 0.99)) or 1.0
        return -m, m
    lo = 0.0 if kind == "spread" or finite.min() >= 0 else float(np.quantile(finite, 0.01))
    hi = float(np.quantile(finite, 0.995))
    return lo, hi if hi > lo else lo + 1.0


def plot_maps(
    path: str | os.PathLike[str],
    panels: Sequence[MapPanel],
    *,
    title: str = "",
    units: str = "",
    coastlines: Coastlines | None = None,
    ncols: int = 3,
) -> Path:
    """Draw ``panels`` in a grid of maps and save a PNG.

    Parameters
    ----------
    path
        Output PNG file.
    panels
        Maps to draw, each with dims ``(lat, lon)`` (1-D coordinates, degrees).
    title, units
        Figure title and the colour-bar label.
    coastlines
        From :func:`resolve_coastlines`: draw coastlines with Cartopy (PlateCarree). None
        draws plain lat/lon axes without coastlines. If Cartopy's download of Natural Earth
        coastlines (``Coastlines.download``) fails, the maps are drawn without them and an
        :class:`EsmscaleWarning` says so.
    ncols
        Panels per row.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from esmscale.datasets import synthetic_precip
    >>> pr = synthetic_precip(8, 8, 1).pr.isel(time=0)
    >>> out = plot_maps(tempfile.mkdtemp() + "/m.png", [MapPanel("obs", pr)])
    >>> out.read_bytes()[1:4] == b"PNG"
    True
    """
    import warnings

    if not panels:
        raise EsmscaleError("plot_maps: no panel to draw.")
    out = Path(path)
    if coastlines is None or not coastlines.download:
        _render(out, panels, title, units, coastlines, ncols)
        return out
    try:
        _render(out, panels, title, units, coastlines, ncols)
    except OSError as err:  # urllib's URLError is an OSError
        warnings.warn(
            f"maps drawn without coastlines: Cartopy could not download Natural Earth "
            f"coastlines ({err}). The {_OFFLINE_HINT}.",
            EsmscaleWarning,
            stacklevel=2,
        )
        _render(out, panels, title, units, None, ncols)
    return out


def _render(
    out: Path,
    panels: Sequence[MapPanel],
    title: str,
    units: str,
    coastlines: Coastlines | None,
    ncols: int,
) -> None:
    from matplotlib.figure import Figure

    from esmscale.prepare.coords import find_latlon

    n = len(panels)
    nc = min(ncols, n)
    nr = -(-n // nc)
    fig = Figure(figsize=(4.2 * nc, 3.4 * nr + 0.5), layout="constrained")
    if title:
        fig.suptitle(title)
    limits = {k: _limits(panels, k) for k in ("field", "spread", "diff")}
    cmaps = {"field": "viridis", "spread": "magma", "diff": "RdBu_r"}
    with contextlib.ExitStack() as stack:
        feature = stack.enter_context(_offline(coastlines)) if coastlines is not None else None
        crs = None
        if feature is not None:
            import cartopy.crs as ccrs

            crs = ccrs.PlateCarree()
        for i, panel in enumerate(panels):
            da = panel.data
            lat, lon = find_latlon(da)
            da = da.transpose(lat, lon)
            x, y = np.asarray(da[lon].values), np.asarray(da[lat].values)
            lo, hi = limits[panel.kind]
            style: dict[str, Any] = {"shading": "nearest", "vmin": lo, "vmax": hi}
            style["cmap"] = cmaps[panel.kind]
            if crs is not None:
                ax = fig.add_subplot(nr, nc, i + 1, projection=crs)
                im = ax.pcolormesh(x, y, da.values, transform=crs, **style)
                ax.set_extent([*_edges(x), *_edges(y)], crs=crs)
                ax.add_feature(feature, facecolor="none", edgecolor="black", linewidth=0.8)
                grid = ax.gridlines(draw_labels=True, linewidth=0.3, color="grey")
                grid.top_labels = grid.right_labels = False
            else:
                ax = fig.add_subplot(nr, nc, i + 1)
                im = ax.pcolormesh(x, y, da.values, **style)
                ax.set_aspect("equal")
                ax.set_xlabel("longitude (degrees east)")
                ax.set_ylabel("latitude (degrees north)")
            ax.set_title(panel.title, fontsize=10)
            fig.colorbar(im, ax=ax, shrink=0.85, label=units)
        fig.savefig(out, dpi=90)
