"""Intake-ESM catalogs ("ESM collections": a JSON spec plus a CSV of assets), loaded safely.

A catalog names datasets by facets (``source_id``, ``experiment_id``, ``variable_id``, ...);
:func:`open_catalog_dataset` turns a query into one :class:`xarray.Dataset` through
``intake_esm``. Catalogs are data, not code, so loading is strict:

* the JSON spec and its CSV must be local files, and the CSV must lie in the spec's folder;
* no templating: a spec or CSV containing ``{{`` or ``{%`` is refused (Intake templates can
  read environment variables and import modules);
* every asset is a local path (no ``s3://``, ``https://``, ...); relative paths are resolved
  against ``root`` (default: the catalog's folder) and must stay inside it (no ``..`` escapes,
  no absolute paths elsewhere).

The repository ships ``catalogs/climate4r_iberia.json`` for the shared sample data; its asset
paths are relative to the data root (``$ESMSCALE_DATA``, by default ``../shared/data``).

Examples
--------
>>> import os
>>> from pathlib import Path
>>> root = Path(os.environ.get("ESMSCALE_DATA", "../shared/data"))
>>> spec = Path(__file__).resolve().parents[2] / "catalogs" / "climate4r_iberia.json"
>>> if (root / "climate4r_iberia").exists():  # doctest: +SKIP
...     ds = open_catalog_dataset(spec, root=root, source_id="CNRM-CM5",
...                               experiment_id="rcp85", variable_id="pr")
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from esmscale.errors import EsmscaleError

__all__ = ["load_catalog", "open_catalog_dataset", "parse_catalog_uri"]

_TEMPLATE_MARKS = ("{{", "{%")
_REQUIRED = ("esmcat_version", "attributes", "assets")


def _is_url(text: str) -> bool:
    return "://" in text


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _no_templates(text: str, where: str) -> None:
    for mark in _TEMPLATE_MARKS:
        if mark in text:
            raise EsmscaleError(
                f"{where} contains the template marker {mark!r}; esmscale loads catalogs with "
                "templating off (templates can read the environment and import code). Write "
                "the values out literally."
            )


def _read_spec(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    _no_templates(text, f"catalog {str(path)!r}")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise EsmscaleError(f"catalog {str(path)!r} is not valid JSON: {err}.") from None
    if not isinstance(spec, dict) or any(k not in spec for k in _REQUIRED):
        raise EsmscaleError(
            f"catalog {str(path)!r} is not an ESM collection spec: it needs the keys "
            f"{list(_REQUIRED)} and 'catalog_file' or 'catalog_dict' (see "
            "https://github.com/NCAR/esm-collection-spec)."
        )
    if ("catalog_file" in spec) == ("catalog_dict" in spec):
        raise EsmscaleError(
            f"catalog {str(path)!r} must have exactly one of 'catalog_file' (a CSV next to it) "
            "and 'catalog_dict' (the records inline)."
        )
    return spec


def _read_table(spec: dict[str, Any], folder: Path, name: str) -> pd.DataFrame:
    if "catalog_dict" in spec:
        return pd.DataFrame.from_records(spec["catalog_dict"])
    csv = str(spec["catalog_file"])
    if _is_url(csv):
        raise EsmscaleError(
            f"catalog {name!r}: catalog_file {csv!r} is remote; esmscale reads local catalogs "
            "only (nothing is downloaded). Put the CSV next to the JSON."
        )
    table = folder / csv
    if not _inside(table, folder):
        raise EsmscaleError(
            f"catalog {name!r}: catalog_file {csv!r} lies outside the catalog's folder "
            f"{str(folder)!r}; keep the CSV beside the JSON."
        )
    if not table.is_file():
        raise EsmscaleError(f"catalog {name!r}: its CSV {str(table)!r} does not exist.")
    _no_templates(table.read_text(encoding="utf-8"), f"catalog table {str(table)!r}")
    return pd.read_csv(table)


def _resolve_assets(df: pd.DataFrame, column: str, root: Path, name: str) -> pd.DataFrame:
    if column not in df.columns:
        raise EsmscaleError(
            f"catalog {name!r}: the assets column {column!r} is not in its table (columns: "
            f"{list(map(str, df.columns))})."
        )
    resolved = []
    for raw in df[column].astype(str):
        if _is_url(raw):
            raise EsmscaleError(
                f"catalog {name!r}: asset {raw!r} is remote; esmscale opens local files only "
                "(nothing is downloaded). Copy the data locally and list relative paths."
            )
        p = Path(raw)
        full = p if p.is_absolute() else root / p
        if not _inside(full, root):
            raise EsmscaleError(
                f"catalog {name!r}: asset {raw!r} resolves outside the data root "
                f"{str(root)!r}; list paths relative to the root",
                python="(pass root= to choose it).",
                cli="(choose it with --catalog-root).",
            )
        resolved.append(str(full.resolve()))
    return df.assign(**{column: resolved})


def load_catalog(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Any:
    """Load an ESM collection (JSON + CSV) safely as an ``intake_esm.esm_datastore``.

    Parameters
    ----------
    path
        The local JSON spec.
    root
        Folder that relative asset paths are resolved against and that every asset must lie in;
        default: the folder of the JSON.

    Returns
    -------
    intake_esm.esm_datastore
        With absolute local asset paths; ``.df`` is the table, ``.search(...)`` filters it.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> from esmscale.io.catalog_build import build_catalog
    >>> folder = Path(tempfile.mkdtemp())
    >>> ds = xr.Dataset({"pr": (("lat", "lon"), np.ones((2, 2)))})
    >>> ds.to_netcdf(folder / "pr_day_ESM1_historical_r1i1p1f1_gn.nc")
    >>> _ = build_catalog(folder, folder / "catalog.json")
    >>> cat = load_catalog(folder / "catalog.json")
    >>> cat.df[["source_id", "experiment_id", "variable_id"]].values.tolist()
    [['ESM1', 'historical', 'pr']]
    >>> load_catalog("https://example.org/catalog.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: catalog 'https://example.org/catalog.json' is remote; ...
    """
    text = str(path)
    if _is_url(text):
        raise EsmscaleError(
            f"catalog {text!r} is remote; esmscale reads local catalog files only (nothing is "
            "downloaded at run time)."
        )
    spec_path = Path(text)
    if not spec_path.is_file():
        raise EsmscaleError(f"catalog {text!r} does not exist; give the path of its JSON file.")
    try:
        from intake_esm import esm_datastore
    except ImportError:  # pragma: no cover - intake-esm is in the test extra
        raise EsmscaleError(
            "reading catalogs needs intake-esm: pip install 'esmscale[catalog]'."
        ) from None
    folder = spec_path.resolve().parent
    base = Path(root).resolve() if root is not None else folder
    if not base.is_dir():
        raise EsmscaleError(
            f"catalog root {str(base)!r} is not a folder;",
            python="pass root= a folder.",
            cli="give --catalog-root a folder.",
        )
    spec = _read_spec(spec_path)
    df = _read_table(spec, folder, text)
    df = _resolve_assets(df, str(spec["assets"].get("column_name", "path")), base, text)
    esmcat = {k: v for k, v in spec.items() if k not in ("catalog_file", "catalog_dict")}
    return esm_datastore({"esmcat": esmcat, "df": df}, progressbar=False)


def open_catalog_dataset(
    catalog: Any, root: str | os.PathLike[str] | None = None, **query: Any
) -> xr.Dataset:
    """Open the one dataset of ``catalog`` that matches ``query`` (facet=value pairs).

    ``catalog`` is a path (loaded with :func:`load_catalog`) or a loaded datastore. Times are
    decoded with cftime, as in :func:`esmscale.prepare.inputs.open_dataset`. A query that
    matches nothing, or more than one dataset, is an error that lists the choices. NetCDF files
    and Zarr stores both open.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> from esmscale.io.catalog_build import build_catalog
    >>> folder = Path(tempfile.mkdtemp())
    >>> ds = xr.Dataset({"pr": (("lat", "lon"), np.ones((2, 2)))})
    >>> ds.to_netcdf(folder / "pr_day_ESM1_historical_r1i1p1f1_gn.nc")
    >>> ds.to_zarr(folder / "pr_day_ESM2_historical_r1i1p1f1_gn.zarr", zarr_format=2)
    ... # doctest: +ELLIPSIS
    <...>
    >>> _ = build_catalog(folder, folder / "catalog.json")
    >>> open_catalog_dataset(folder / "catalog.json", source_id="ESM2")["pr"].shape
    (2, 2)
    >>> open_catalog_dataset(folder / "catalog.json", source_id="ESM3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: no catalog entry matches ... source_id: ['ESM1', 'ESM2'].

    Where each value exists but not together, the values that go with the rest of the query
    are listed:

    >>> open_catalog_dataset(folder / "catalog.json", source_id="ESM2", experiment_id="ssp585")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: ... experiment_id: ['historical'] (with source_id='ESM2').
    """
    cat = load_catalog(catalog, root) if isinstance(catalog, str | os.PathLike) else catalog
    df: pd.DataFrame = cat.df
    unknown = sorted(set(query) - set(map(str, df.columns)))
    if unknown:
        raise EsmscaleError(
            f"catalog has no facet(s) {unknown}; facets are {list(map(str, df.columns))}."
        )
    sub = cat.search(**query)
    if len(sub.df) == 0:
        raise EsmscaleError(
            f"no catalog entry matches {query}; available values: {_choices(cat, query)}."
        )
    keys = list(sub.keys())
    if len(keys) > 1:
        free = [
            str(c)
            for c in sub.df.columns
            if c not in query and c != cat.esmcat.assets.column_name and sub.df[c].nunique() > 1
        ]
        raise EsmscaleError(
            f"{query} matches {len(keys)} datasets ({keys}); narrow the query with one of {free}."
        )
    missing = [p for p in sub.df[cat.esmcat.assets.column_name] if not Path(p).exists()]
    if missing:
        raise EsmscaleError(
            f"catalog entries point to missing files: {missing}. A catalog's relative paths are "
            "resolved against its root, by default the catalog's own folder; `esmscale catalog "
            "build` writes them relative to the folder it scanned:",
            python="pass root= that folder.",
            cli="give --catalog-root that folder (or set $ESMSCALE_CATALOG_ROOT).",
        )
    # threaded=False: the files of an entry are opened one after the other (netCDF-C/HDF5 is
    # not thread-safe; concurrent opens from intake-esm's threads can crash the process)
    dsets = sub.to_dataset_dict(
        xarray_open_kwargs=_open_kwargs(sub), progressbar=False, threaded=False
    )
    return next(iter(dsets.values()))


def _choices(cat: Any, query: dict[str, Any]) -> str:
    """The values of each queried facet that exist, given the query's other facets.

    ``source_id: ['A', 'B']`` where the rest of the query matches nothing (or is empty);
    ``experiment_id: ['historical'] (with source_id='A')`` where it narrows the choice.
    """
    df: pd.DataFrame = cat.df
    parts = []
    for key in query:
        others = {k: v for k, v in query.items() if k != key}
        rows = cat.search(**others).df if others else df
        if others and len(rows):
            given = ", ".join(f"{k}={v!r}" for k, v in others.items())
            parts.append(f"{key}: {sorted(map(str, rows[key].unique()))} (with {given})")
        else:
            parts.append(f"{key}: {sorted(map(str, df[key].unique()))}")
    return "; ".join(parts)


def _open_kwargs(cat: Any) -> dict[str, Any]:
    """The open options for the assets of ``cat``: cftime times; local Zarr stores open too.

    No engine is given: intake-esm takes it from each asset's format (netcdf4 for NetCDF, zarr
    for Zarr). For local Zarr stores intake-esm would pass ``storage_options={}``, which zarr 3
    refuses for a path that is not an fsspec URL; ``None`` there opens them as NetCDF files are.
    """
    kwargs: dict[str, Any] = {"decode_times": xr.coders.CFDatetimeCoder(use_cftime=True)}
    column = cat.esmcat.assets.format_column_name
    formats = (
        set(map(str, cat.df[column]))
        if column
        else {str(getattr(cat.esmcat.assets.format, "value", ""))}
    )
    if formats and formats <= {"zarr", "zarr2", "zarr3"}:
        kwargs["backend_kwargs"] = {"storage_options": None}
    return kwargs


def parse_catalog_uri(text: str) -> tuple[str, dict[str, str]] | None:
    """Split ``"cat.json?facet=value&facet=value"`` into the path and the query (else None).

    Examples
    --------
    >>> parse_catalog_uri("catalogs/x.json?source_id=CNRM-CM5&variable_id=pr")
    ('catalogs/x.json', {'source_id': 'CNRM-CM5', 'variable_id': 'pr'})
    >>> parse_catalog_uri("data.nc") is None
    True
    """
    path, sep, rest = text.partition("?")
    if not sep or not path.endswith(".json"):
        return None
    query: dict[str, str] = {}
    for part in filter(None, rest.split("&")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise EsmscaleError(
                f"catalog query {rest!r}: {part!r} is not facet=value; write e.g. "
                f"{path}?source_id=CNRM-CM5&variable_id=pr."
            )
        query[key] = value
    return path, query
