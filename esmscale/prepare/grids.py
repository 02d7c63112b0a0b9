"""CF grid descriptions: the CRS, native ``(y, x)`` axes and 2-D lat/lon of any CF grid.

A grid is rectilinear lat/lon (1-D latitude and longitude), rotated pole (``grid_mapping`` with
``grid_mapping_name = "rotated_latitude_longitude"``) or projected (a ``grid_mapping`` variable
with CF projection attributes, a ``crs_wkt``/``spatial_ref`` WKT or a ``proj4`` string). The CRS
is built by `pyproj <https://pyproj4.github.io/pyproj/>`_ and every transform goes through it.
Errors name the variable and attribute read and say what to add.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyproj
import xarray as xr
from pyproj.exceptions import CRSError

from esmscale.errors import EsmscaleError
from esmscale.prepare.coords import find_latlon

__all__ = [
    "Grid",
    "block_order",
    "describe_grid",
    "is_rectilinear_latlon",
    "spatial_dims",
    "tiling_factor",
    "with_grid_mapping",
]

#: Geographic CRS used for 1-D lat/lon grids and for all 2-D lat/lon output.
LONLAT = pyproj.CRS.from_epsg(4326)
_WKT_ATTRS = ("crs_wkt", "spatial_ref")
_PROJ4_ATTRS = ("proj4", "proj4text", "proj4_params", "proj_params")
_X_NAMES = ("projection_x_coordinate", "grid_longitude")
_Y_NAMES = ("projection_y_coordinate", "grid_latitude")
_UNIT_SCALE = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0, "km": 1e3}
# Two CRS forms of one grid agree when they map its corners within this many metres.
_AGREE_M = 1.0


@dataclass(frozen=True)
class Grid:
    """One CF grid: its CRS and native 1-D axes.

    Attributes
    ----------
    kind
        ``"latlon"`` (1-D latitude/longitude), ``"rotated"`` or ``"projected"``.
    crs
        The pyproj CRS of the native ``(x, y)`` values (EPSG:4326 for ``"latlon"``).
    ydim, xdim
        Names of the native dims (e.g. ``"rlat"``/``"rlon"``, ``"northing"``/``"easting"``).
    y, x
        Native 1-D coordinates in the CRS's units (metres for projected grids; a ``km``
        coordinate is scaled).
    mapping_name
        Name of the grid-mapping variable (None for plain lat/lon).
    mapping
        That variable (a scalar with the CF attributes), kept on outputs.
    source
        Which variable and attribute the CRS was read from.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((3, 4)), dims=("lat", "lon"),
    ...                   coords={"lat": [40.0, 40.5, 41.0], "lon": [0.0, 0.5, 1.0, 1.5]})
    >>> grid = describe_grid(da)
    >>> grid.kind, grid.shape, grid.crs.to_epsg()
    ('latlon', (3, 4), 4326)
    """

    kind: str
    crs: pyproj.CRS
    ydim: str
    xdim: str
    y: np.ndarray
    x: np.ndarray
    mapping_name: str | None = None
    mapping: xr.DataArray | None = field(default=None, repr=False)
    source: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return self.y.size, self.x.size

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Native ``(X, Y)`` 2-D arrays of shape ``(ny, nx)``."""
        xx, yy = np.meshgrid(self.x, self.y)
        return xx, yy

    def to_native(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Longitude/latitude (EPSG:4326) to this grid's native ``(x, y)``."""
        if self.kind == "latlon":
            return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        tr = pyproj.Transformer.from_crs(LONLAT, self.crs, always_xy=True)
        x, y = tr.transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def from_native(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Native ``(x, y)`` to longitude/latitude (EPSG:4326)."""
        if self.kind == "latlon":
            return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        tr = pyproj.Transformer.from_crs(self.crs, LONLAT, always_xy=True)
        lon, lat = tr.transform(x, y)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """2-D longitude and latitude of the cell centres, shape ``(ny, nx)``."""
        return self.from_native(*self.mesh())

    def spacing_km(self) -> float:
        """Median distance between neighbouring cell centres along x and y, in km."""
        lon, lat = self.lonlat()
        geod = pyproj.Geod(ellps="WGS84")
        d: list[np.ndarray] = []
        if lon.shape[1] > 1:
            d.append(geod.inv(lon[:, :-1], lat[:, :-1], lon[:, 1:], lat[:, 1:])[2].ravel())
        if lon.shape[0] > 1:
            d.append(geod.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])[2].ravel())
        return float(np.median(np.concatenate(d))) / 1e3 if d else float("nan")

    def same_crs(self, other: Grid) -> bool:
        """Whether both grids use one CRS (checked on this grid's corners)."""
        if self.kind != other.kind:
            return False
        if self.kind == "latlon":
            return True
        return _agree(self.crs, other.crs, self, _AGREE_M)


def _data_var(obj: xr.Dataset | xr.DataArray) -> xr.DataArray | None:
    if isinstance(obj, xr.DataArray):
        return obj
    gridded = [v for v in obj.data_vars.values() if v.ndim >= 2]
    with_gm = [v for v in gridded if "grid_mapping" in v.attrs]
    picked = with_gm or gridded
    return picked[0] if picked else None


def _items(obj: xr.Dataset | xr.DataArray) -> list[tuple[Any, Any]]:
    return list((obj.coords if isinstance(obj, xr.DataArray) else obj.variables).items())


def _names(obj: xr.Dataset | xr.DataArray) -> set[str]:
    return {str(k) for k, _ in _items(obj)}


def with_grid_mapping(ds: xr.Dataset | xr.DataArray, da: xr.DataArray) -> xr.DataArray:
    """``da`` with its grid-mapping variable from ``ds`` attached as a scalar coordinate.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"tp": (("y", "x"), [[1.0]], {"grid_mapping": "crs"}), "crs": ((), 0)})
    >>> "crs" in with_grid_mapping(ds, ds["tp"]).coords
    True
    """
    gm = str(da.attrs.get("grid_mapping", "")).split(":")[0].strip()
    if (
        gm
        and gm not in da.coords
        and isinstance(ds, xr.Dataset)
        and gm in ds.variables
        and ds[gm].ndim == 0
    ):
        return da.assign_coords({gm: ds[gm]})
    return da


def _mapping_var(obj: xr.Dataset | xr.DataArray) -> tuple[str | None, str]:
    """Name of the grid-mapping variable and how it was found."""
    var = _data_var(obj)
    if var is not None and "grid_mapping" in var.attrs:
        gm = str(var.attrs["grid_mapping"]).split(":")[0].strip()
        if gm not in _names(obj):
            raise EsmscaleError(
                f"variable {var.name!r} has grid_mapping={gm!r}, but there is no variable "
                f"{gm!r}; keep the grid-mapping variable with the data (open the file as a "
                "Dataset, or for a DataArray keep it as a coordinate: da.assign_coords("
                f"{gm}=ds[{gm!r}]))."
            )
        return gm, f"{var.name!r}.attrs['grid_mapping']"
    found = [
        str(k)
        for k, v in _items(obj)
        if v.ndim == 0 and ({"grid_mapping_name", *_WKT_ATTRS, *_PROJ4_ATTRS} & set(v.attrs))
    ]
    if len(found) == 1:
        return found[0], f"the only grid-mapping variable {found[0]!r}"
    if len(found) > 1:
        raise EsmscaleError(
            f"several grid-mapping variables {found} and no grid_mapping attribute on the data; "
            "set one, e.g. ds[VAR].attrs['grid_mapping'] = " + repr(found[0]) + "."
        )
    return None, ""


def _parse_forms(name: str, attrs: dict[str, Any]) -> list[tuple[str, pyproj.CRS]]:
    """Every CRS form present in the attributes of grid-mapping variable ``name``."""
    forms: list[tuple[str, pyproj.CRS]] = []
    gmn = attrs.get("grid_mapping_name")
    if gmn is not None:
        cf = {k: v for k, v in attrs.items() if k not in (*_WKT_ATTRS, *_PROJ4_ATTRS)}
        try:
            forms.append((f"{name}.grid_mapping_name={gmn!r}", pyproj.CRS.from_cf(cf)))
        except CRSError as err:
            raise EsmscaleError(
                f"grid mapping {gmn!r} of variable {name!r} is not known to pyproj ({err}); "
                "use a CF grid_mapping_name (e.g. 'transverse_mercator', "
                "'polar_stereographic', 'lambert_conformal_conic', "
                "'rotated_latitude_longitude') or add a 'crs_wkt' attribute with the WKT."
            ) from err
    for key in _WKT_ATTRS:
        if key in attrs:
            try:
                forms.append((f"{name}.{key}", pyproj.CRS.from_wkt(str(attrs[key]))))
            except CRSError as err:
                raise EsmscaleError(
                    f"attribute {key!r} of {name!r} is not a WKT that pyproj can read ({err}); "
                    "fix or delete it."
                ) from err
    for key in _PROJ4_ATTRS:
        if key in attrs:
            text = str(attrs[key])
            try:
                crs = pyproj.CRS.from_proj4(text)
            except CRSError as err:
                raise EsmscaleError(
                    f"attribute {key!r} of {name!r} is not a proj4 string that pyproj can "
                    f"read ({err}); fix or delete it."
                ) from err
            if not forms and not any(t in text for t in ("+ellps", "+datum", "+a=", "+R=")):
                raise EsmscaleError(
                    f"the CRS of {name!r} is ambiguous: it was read from the attribute "
                    f"{key}={text!r}, which names no ellipsoid or datum (PROJ would assume "
                    "one). Add +ellps=... or +datum=... to it, or a 'crs_wkt' attribute."
                )
            forms.append((f"{name}.{key}", crs))
    return forms


def _corners(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([grid.x[0], grid.x[-1], grid.x[0], grid.x[-1], grid.x[grid.x.size // 2]])
    y = np.array([grid.y[0], grid.y[0], grid.y[-1], grid.y[-1], grid.y[grid.y.size // 2]])
    return x, y


def _agree(a: pyproj.CRS, b: pyproj.CRS, grid: Grid, tol_m: float) -> bool:
    """Whether ``a`` and ``b`` put ``grid``'s corners at the same places (within ``tol_m``)."""
    x, y = _corners(grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        la = pyproj.Transformer.from_crs(a, LONLAT, always_xy=True).transform(x, y)
        lb = pyproj.Transformer.from_crs(b, LONLAT, always_xy=True).transform(x, y)
    d = pyproj.Geod(ellps="WGS84").inv(la[0], la[1], lb[0], lb[1])[2]
    return bool(np.all(np.isfinite(d)) and np.max(d) <= tol_m)


def _axes(obj: xr.Dataset | xr.DataArray, var: xr.DataArray | None) -> tuple[str, str]:
    """Native ``(y, x)`` dims: CF standard names or axis attributes, else the last two dims."""
    dims = [str(d) for d in (var.dims if var is not None else obj.dims)]
    xs = [
        d
        for d in dims
        if d in obj.coords
        and (obj[d].attrs.get("standard_name") in _X_NAMES or obj[d].attrs.get("axis") == "X")
    ]
    ys = [
        d
        for d in dims
        if d in obj.coords
        and (obj[d].attrs.get("standard_name") in _Y_NAMES or obj[d].attrs.get("axis") == "Y")
    ]
    if len(xs) == 1 and len(ys) == 1:
        return ys[0], xs[0]
    if len(dims) < 2:
        raise EsmscaleError(
            f"variable {getattr(var, 'name', None)!r} has dims {tuple(dims)}; a grid needs two "
            "spatial dims (y, x)."
        )
    return dims[-2], dims[-1]


def _native_values(obj: xr.Dataset | xr.DataArray, dim: str, crs: pyproj.CRS) -> np.ndarray:
    if dim not in obj.coords:
        raise EsmscaleError(
            f"dimension {dim!r} has no coordinate values; a projected grid needs 1-D "
            f"coordinates along x and y (add them, e.g. obj.assign_coords({dim}=values))."
        )
    v = np.asarray(obj[dim].values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise EsmscaleError(f"coordinate {dim!r} has non-finite values; fix or drop them.")
    if crs.is_projected:
        unit = str(obj[dim].attrs.get("units", "m")).strip().lower()
        crs_unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        if unit not in _UNIT_SCALE:
            raise EsmscaleError(
                f"coordinate {dim!r} has units {unit!r}; a projected coordinate needs 'm' or 'km'."
            )
        v = v * _UNIT_SCALE[unit] / crs_unit
    return v


def describe_grid(obj: xr.Dataset | xr.DataArray) -> Grid:
    """The :class:`Grid` of ``obj``: rectilinear lat/lon, rotated pole or projected.

    The grid-mapping variable is the one named by the data's ``grid_mapping`` attribute (else the
    only scalar variable with ``grid_mapping_name``, ``crs_wkt``, ``spatial_ref`` or ``proj4``).
    All CRS forms it holds are read with pyproj; they must agree on the grid's corners.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Gridded data or a grid description.

    Returns
    -------
    Grid

    Raises
    ------
    EsmscaleError
        A grid mapping pyproj does not know (named), 2-D lat/lon without a grid mapping, CRS
        attributes that disagree or a proj4 string without datum (the attribute is named).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset(
    ...     {"pr": (("rlat", "rlon"), np.zeros((2, 3)), {"grid_mapping": "rotated_pole"}),
    ...      "rotated_pole": ((), 0, {"grid_mapping_name": "rotated_latitude_longitude",
    ...                                "grid_north_pole_latitude": 39.25,
    ...                                "grid_north_pole_longitude": -162.0})},
    ...     coords={"rlat": [0.0, 0.44], "rlon": [-1.0, 0.0, 1.0]})
    >>> g = describe_grid(ds)
    >>> g.kind, g.ydim, g.xdim, g.shape
    ('rotated', 'rlat', 'rlon', (2, 3))
    >>> [round(float(v), 2) for v in g.lonlat()[1][0, 1:2]]  # rlat=0 at rlon=0: lat 50.75
    [50.75]
    """
    gm, how = _mapping_var(obj)
    var = _data_var(obj)
    attrs = dict(obj[gm].attrs) if gm is not None else {}
    if gm is None or attrs.get("grid_mapping_name") == "latitude_longitude":
        try:
            lat, lon = find_latlon(obj)
        except EsmscaleError as err:
            if "curvilinear" in str(err) or "-D with dims" in str(err):
                raise EsmscaleError(
                    f"{getattr(var, 'name', 'the data')!r} has 2-D latitude/longitude but no grid "
                    "mapping: esmscale needs the grid's native 1-D axes and their CRS. Add a "
                    "grid-mapping variable (CF attributes such as grid_mapping_name="
                    "'rotated_latitude_longitude' with grid_north_pole_latitude/longitude, or "
                    "a 'crs_wkt' WKT) and point to it with the data's 'grid_mapping' attribute."
                ) from err
            raise
        ydim = str(obj[lat].dims[0])
        xdim = str(obj[lon].dims[0])
        return Grid(
            "latlon",
            LONLAT,
            ydim,
            xdim,
            np.asarray(obj[lat].values, dtype=np.float64),
            np.asarray(obj[lon].values, dtype=np.float64),
            gm,
            obj[gm] if gm is not None else None,
            f"1-D coordinates {lat!r}/{lon!r}",
        )
    forms = _parse_forms(gm, attrs)
    if not forms:
        raise EsmscaleError(
            f"grid-mapping variable {gm!r} (from {how}) has no CRS: add grid_mapping_name with "
            "its CF parameters or a 'crs_wkt' attribute."
        )
    source, crs = forms[0]
    base = crs.source_crs if crs.is_bound and crs.source_crs is not None else crs
    kind = "rotated" if attrs.get("grid_mapping_name") == "rotated_latitude_longitude" else ""
    if not kind:
        kind = "projected" if base.is_projected else "rotated" if "ob_tran" in base.srs else ""
    if not kind:
        raise EsmscaleError(
            f"the CRS read from {source} is {base.type_name!r}, neither projected nor rotated "
            "pole; a geographic grid needs plain 1-D latitude/longitude coordinates instead."
        )
    ydim, xdim = _axes(obj, var)
    grid = Grid(
        kind,
        base,
        ydim,
        xdim,
        _native_values(obj, ydim, base),
        _native_values(obj, xdim, base),
        gm,
        obj[gm],
        source,
    )
    for other, ocrs in forms[1:]:
        if not _agree(crs, ocrs, grid, _AGREE_M):
            raise EsmscaleError(
                f"the CRS of {gm!r} is ambiguous: {source} was read, and {other} describes a "
                f"different CRS (the grid's corners move by more than {_AGREE_M:g} m). Delete "
                "the wrong attribute."
            )
    return grid


def is_rectilinear_latlon(obj: xr.Dataset | xr.DataArray) -> bool:
    """Whether ``obj`` lies on a plain 1-D lat/lon grid (the xarray-regrid path).

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((2, 2)), dims=("lat", "lon"),
    ...                   coords={"lat": [40.0, 41.0], "lon": [0.0, 1.0]})
    >>> is_rectilinear_latlon(da), is_rectilinear_latlon(xr.DataArray([1.0], dims="x"))
    (True, False)
    """
    try:
        return describe_grid(obj).kind == "latlon"
    except EsmscaleError:
        return False


def spatial_dims(da: xr.DataArray) -> tuple[str, str]:
    """``(y, x)`` dims of ``da`` on any supported grid.

    Examples
    --------
    >>> da = xr.DataArray(np.zeros((1, 2, 2)), dims=("time", "latitude", "longitude"),
    ...                   coords={"latitude": [40.0, 41.0], "longitude": [0.0, 1.0]})
    >>> spatial_dims(da)
    ('latitude', 'longitude')
    """
    g = describe_grid(da)
    return g.ydim, g.xdim


def tiling_factor(coarse: Grid, fine: Grid) -> int | None:
    """``k`` if every cell of ``coarse`` is exactly a ``k x k`` block of ``fine`` cells, else None.

    Both grids must share a CRS; the coarse centres must be the means of the fine blocks and
    the fine grid must be ``k`` times as large along each axis.

    Examples
    --------
    >>> def grid(step, n):
    ...     centres = (np.arange(n) + 0.5) * step
    ...     return describe_grid(xr.DataArray(np.zeros((n, n)), dims=("lat", "lon"),
    ...                                       coords={"lat": centres, "lon": centres}))
    >>> tiling_factor(grid(1.0, 4), grid(0.25, 16))
    4
    >>> tiling_factor(grid(1.0, 4), grid(0.3, 16)) is None
    True
    """
    if not coarse.same_crs(fine):
        return None
    ny, nx = coarse.shape
    if ny == 0 or nx == 0 or fine.shape[0] % ny or fine.shape[1] % nx:
        return None
    k = fine.shape[0] // ny
    if k < 1 or fine.shape[1] // nx != k:
        return None
    for cv, fv in ((coarse.y, fine.y), (coarse.x, fine.x)):
        if block_order(cv, fv, k) is None:
            return None
    return k


def block_order(coarse: np.ndarray, fine: np.ndarray, k: int) -> np.ndarray | None:
    """Index of the coarse value matching each ``k`` block of ``fine``; None if they differ.

    Examples
    --------
    >>> block_order(np.array([3.0, 1.0]), np.array([0.5, 1.5, 2.5, 3.5]), 2).tolist()
    [1, 0]
    """
    if fine.size != k * coarse.size:
        return None
    means = fine.reshape(-1, k).mean(axis=1)
    step = abs(float(fine[1] - fine[0])) if fine.size > 1 else 1.0
    idx = np.argmin(np.abs(means[:, None] - coarse[None, :]), axis=1)
    if np.unique(idx).size != idx.size or np.max(np.abs(coarse[idx] - means)) > 1e-6 * step:
        return None
    return idx
