"""Build an intake-esm catalog (JSON + CSV) from a folder of NetCDF and Zarr files.

Each file is opened (metadata only) and classified by its CMIP facets: first from its global
attributes (CMIP6: ``source_id``, ``experiment_id``, ``variant_label``/``member_id``,
``table_id``, ``grid_label``...; CMIP5/CMIP3: ``project_id``, ``model_id``, ``realization``...;
CORDEX: ``CORDEX_domain``, ``driving_model_id``...), then, for what is missing, from the
CMIP6, CMIP5 and CORDEX file-name conventions, then from the free-text ``source`` and
``title`` attributes (:func:`facets_from_text`: ``"CMIP5 CNRM-CERFACS CNRM-CM5 historical
r1i1p1 day"``, ``"EUR-44 ICHEC-EC-EARTH_historical_r1i1p1_RACMO22E_v1 day"``). Files of the
gridded observation and reanalysis products of :data:`PRODUCTS` (E-OBS, ANUSPLIN, NCEP/NCAR
Reanalysis 1, ERA5, ERA-Interim), named in those attributes, are catalogued with
``activity_id`` ``"obs"`` or ``"reanalysis"`` and ``experiment_id`` ``"none"`` (no experiment
applies). The time range comes from the time coordinate, and a missing ``frequency`` from its
step (:func:`frequency_of`). A file that cannot be read, or that names no model or product
(``source_id``) and no experiment, is **reported** with the reason and left out of the
catalog; the scan goes on. So are a folder that cannot be listed and a symbolic link that is
broken or leads out of the scanned folder (a catalog's paths must stay inside its root); a
linked folder inside it is scanned at its real path.

Examples
--------
>>> import tempfile, numpy as np, pandas as pd, xarray as xr
>>> folder = Path(tempfile.mkdtemp())
>>> time = pd.date_range("2000-01-01", periods=3)
>>> da = xr.DataArray(np.ones((3, 2, 2)), dims=("time", "lat", "lon"), coords={"time": time})
>>> name = "pr_day_MyESM_ssp585_r1i1p1f1_gn_20000101-20000103.nc"
>>> da.to_dataset(name="pr").to_netcdf(folder / name)
>>> result = build_catalog(folder, folder / "catalog.json")
>>> facets = ["source_id", "experiment_id", "member_id", "variable_id", "time_range"]
>>> result.table[facets].values.tolist()
[['MyESM', 'ssp585', 'r1i1p1f1', 'pr', '20000101-20000103']]
>>> result.skipped
[]
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from esmscale.errors import EsmscaleError

__all__ = [
    "FACETS",
    "PRODUCTS",
    "CatalogBuild",
    "build_catalog",
    "classify",
    "facets_from_text",
    "frequency_of",
]

#: Columns of the catalog, in order (``path`` and ``format`` follow).
FACETS = (
    "project",
    "activity_id",
    "institution_id",
    "source_id",
    "driving_source_id",
    "experiment_id",
    "member_id",
    "table_id",
    "frequency",
    "domain",
    "grid_label",
    "variable_id",
    "time_range",
    "start_time",
    "end_time",
    "folder",
)
#: Written for a facet that neither the attributes nor the file name give (intake-esm drops
#: rows whose grouping facets are empty, so an explicit value keeps every file loadable).
UNKNOWN = "unknown"
_GROUPBY = ("project", "source_id", "driving_source_id", "experiment_id", "member_id",
            "table_id", "frequency", "domain", "grid_label", "folder", "variable_id")  # fmt: skip
_MEMBER6 = r"r\d+i\d+p\d+f\d+"
_MEMBER5 = r"r\d+i\d+p\d+"
_TIME = r"\d{4,14}(?:-\d{4,14})?"
_CMIP6_NAME = re.compile(
    rf"^(?P<variable_id>[^_]+)_(?P<table_id>[^_]+)_(?P<source_id>[^_]+)_(?P<experiment_id>[^_]+)_"
    rf"(?P<member_id>(?:s\d+-)?{_MEMBER6})_(?P<grid_label>g[^_]+)(?:_(?P<time_range>{_TIME}))?$"
)
_CORDEX_NAME = re.compile(
    rf"^(?P<variable_id>[^_]+)_(?P<domain>[A-Z]{{3}}-\d+i?)_(?P<driving_source_id>[^_]+)_"
    rf"(?P<experiment_id>[^_]+)_(?P<member_id>{_MEMBER5})_(?P<source_id>[^_]+)_[^_]+_"
    rf"(?P<frequency>[^_]+)(?:_(?P<time_range>{_TIME}))?$"
)
_CMIP5_NAME = re.compile(
    rf"^(?P<variable_id>[^_]+)_(?P<table_id>[^_]+)_(?P<source_id>[^_]+)_(?P<experiment_id>[^_]+)_"
    rf"(?P<member_id>{_MEMBER5})(?:_(?P<time_range>{_TIME}))?(?:_.*)?$"
)
_TABLE_FREQUENCY = {"day": "day", "Amon": "mon", "Omon": "mon", "Lmon": "mon", "3hr": "3hr",
                    "6hrLev": "6hr", "6hrPlev": "6hr", "fx": "fx", "Aday": "day"}  # fmt: skip
_NOT_DATA = re.compile(r"(_bnds|_bounds|^time_vectors|^crs|^rotated_pole|^rotated_latitude_lon)")

#: Gridded observation and reanalysis products recognised by name in a file's ``source`` or
#: ``title`` attribute: ``(pattern, activity_id, source_id)``. Only when those attributes name
#: no simulation (a CORDEX run "driven by ERA-Interim" stays a CORDEX run).
PRODUCTS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"(?<![\w-])E-OBS(?![\w-])"), "obs", "E-OBS"),
    (re.compile(r"(?<![\w-])ANUSPLIN(?![\w-])"), "obs", "ANUSPLIN"),
    (re.compile(r"NCEP/NCAR (?:Reanalysis 1|R1)(?![\w-])"), "reanalysis", "NCEP-NCAR-R1"),
    (re.compile(r"(?<![\w-])ERA5(?![\w-])"), "reanalysis", "ERA5"),
    (re.compile(r"(?<![\w-])ERA-Interim(?![\w-])"), "reanalysis", "ERA-Interim"),
)
#: ``experiment_id`` of observations and reanalyses (as CMIP6 writes ``sub_experiment_id``).
NO_EXPERIMENT = "none"
_EXPERIMENT = re.compile(
    r"^(?:historical\w*|rcp\d{2}|ssp\d{3}\w*|piControl|amip\w*|abrupt-4xCO2|1pctCO2|evaluation"
    r"|sres\w+)$"
)
_DOMAIN = re.compile(r"^[A-Z]{3}-\d{2,3}i?$")
_MEMBER = re.compile(rf"^(?:{_MEMBER6}|{_MEMBER5})$")
_MODEL = re.compile(r"^[A-Z0-9][A-Za-z0-9.+-]*$")
_PROJECTS = {"CMIP3": "CMIP3", "CMIP5": "CMIP5", "CMIP6": "CMIP6", "CORDEX": "CORDEX",
             "EURO-CORDEX": "CORDEX"}  # fmt: skip
_FREQUENCIES = frozenset({"1hr", "3hr", "6hr", "day", "mon", "yr", "fx"})
#: Time steps (days) of the frequencies :func:`frequency_of` names, with a tolerance each.
_STEPS = (("1hr", 1 / 24, 0.01), ("3hr", 0.125, 0.01), ("6hr", 0.25, 0.01), ("day", 1.0, 0.01),
          ("mon", 30.4, 3.0), ("yr", 365.2, 1.5))  # fmt: skip


@dataclass
class CatalogBuild:
    """What :func:`build_catalog` wrote and what it left out.

    Attributes
    ----------
    json_path, csv_path
        The catalog files.
    table
        The catalog's rows (one per file and variable).
    skipped
        ``(path, reason)`` for every file that is not in the catalog: unreadable, not
        classifiable (no model or experiment in its attributes or name), or a link that is
        broken or leads out of the folder; and every folder that could not be listed (its
        path ends in ``/``). Sorted by path.
    root
        The scanned folder, which the asset paths are relative to.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "empty.nc").write_bytes(b"")
    0
    >>> print(build_catalog(folder, folder / "c.json").summary())  # doctest: +ELLIPSIS
    wrote .../c.json and c.csv: 0 entries from 0 files; 1 files left out:
      empty.nc: unreadable (...)
    """

    json_path: Path
    csv_path: Path
    table: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    root: Path | None = None

    def summary(self) -> str:
        """One paragraph: counts, then one line per file left out."""
        folders = sum(path.endswith("/") for path, _ in self.skipped)
        left_out = f"{len(self.skipped) - folders} files" + (
            f" and {folders} folders" if folders else ""
        )
        lines = [
            f"wrote {self.json_path} and {self.csv_path.name}: {len(self.table)} entries from "
            f"{self.table['path'].nunique() if len(self.table) else 0} files; "
            f"{left_out} left out" + (":" if self.skipped else ".")
        ]
        lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        if self.root is not None and self.json_path.resolve().parent != self.root:
            lines.append(
                f"Its paths are relative to {self.root}, not to the catalog's folder: open it "
                f"with root={str(self.root)!r} (command line: --catalog-root {self.root})."
            )
        return "\n".join(lines)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _one_word(value: Any) -> str | None:
    """``value`` if it is a single word (``"ECMWF"``), else None (a sentence is no id)."""
    text = _text(value)
    return text if text and re.fullmatch(r"[A-Za-z][\w.&-]*", text) else None


def _member5(attrs: dict[str, Any]) -> str | None:
    r = _text(attrs.get("realization"))
    if r is None:
        return None
    i = _text(attrs.get("initialization_method"))
    p = _text(attrs.get("physics_version"))
    return f"r{r}" + (f"i{i}p{p}" if i and p else "")


def _from_attributes(attrs: dict[str, Any]) -> dict[str, str | None]:
    a = {str(k): v for k, v in attrs.items()}
    project = _text(a.get("mip_era")) or _text(a.get("project_id")) or _text(a.get("project"))
    table = _text(a.get("table_id"))
    if table and table.startswith("Table "):  # CMIP5: "Table Amon (31 January 2011) <md5>"
        table = table.split()[1]
    member = _text(a.get("member_id")) or _text(a.get("variant_label"))
    if member is None and _text(a.get("driving_model_ensemble_member")):
        member = _text(a.get("driving_model_ensemble_member"))
    sub_exp = _text(a.get("sub_experiment_id"))
    if member and sub_exp and sub_exp != "none" and not member.startswith(sub_exp):
        member = f"{sub_exp}-{member}"
    domain = _text(a.get("CORDEX_domain")) or _text(a.get("domain_id"))
    if domain and project is None:
        project = "CORDEX"
    experiment = _text(a.get("experiment_id")) or _text(a.get("driving_experiment_name"))
    return {
        "project": project,
        "activity_id": _text(a.get("activity_id")),
        "institution_id": _text(a.get("institution_id"))
        or _text(a.get("institute_id"))
        or _one_word(a.get("institution")),
        "source_id": _text(a.get("source_id")) or _text(a.get("model_id")),
        "driving_source_id": _text(a.get("driving_model_id")) or _text(a.get("driving_source_id")),
        "experiment_id": experiment,
        "member_id": member or _member5(a),
        "table_id": table,
        "frequency": _text(a.get("frequency")),
        "domain": domain,
        "grid_label": _text(a.get("grid_label")),
        "variable_id": _text(a.get("variable_id")),
    }


def _from_name(stem: str) -> dict[str, str]:
    for project, pattern in (("CMIP6", _CMIP6_NAME), ("CORDEX", _CORDEX_NAME),
                             ("CMIP5", _CMIP5_NAME)):  # fmt: skip
        match = pattern.match(stem)
        if match:
            return {"project": project, **{k: v for k, v in match.groupdict().items() if v}}
    return {}


def facets_from_text(text: str) -> dict[str, str]:
    """Facets named in a free-text ``source`` or ``title`` attribute (empty: no simulation).

    The text must name an experiment (``historical``, ``rcp85``, ``ssp585``, ``evaluation``,
    ...). The word before it is the model (``source_id``); in a CMIP text the word between
    the project (``CMIP5``) and the model is the institution. A CORDEX text (a domain such as
    ``EUR-44``) in the CORDEX order ``DRIVING_experiment_member_RCM`` gives the driving model
    and the regional model (``source_id``); a model in parentheses after the regional model
    (``"RACMO22E (EC-EARTH) historical"``) is the driving model. A member
    (``r1i1p1``) after the experiment and a frequency word (``day``, ``mon``) are kept.

    Examples
    --------
    >>> f = facets_from_text("CMIP5 CNRM-CERFACS CNRM-CM5 historical r1i1p1 day")
    >>> f["source_id"], f["institution_id"], f["experiment_id"], f["member_id"], f["frequency"]
    ('CNRM-CM5', 'CNRM-CERFACS', 'historical', 'r1i1p1', 'day')
    >>> f = facets_from_text("EUR-44 ICHEC-EC-EARTH_rcp85_r1i1p1_RACMO22E_v1 day")
    >>> f["project"], f["domain"], f["driving_source_id"], f["source_id"], f["member_id"]
    ('CORDEX', 'EUR-44', 'ICHEC-EC-EARTH', 'RACMO22E', 'r1i1p1')
    >>> text = "EURO-CORDEX EUR-44 RACMO22E (EC-EARTH) historical daily mean temperature"
    >>> facets_from_text(text)["source_id"], facets_from_text(text)["driving_source_id"]
    ('RACMO22E', 'EC-EARTH')
    >>> facets_from_text("E-OBS v14.0 (ECA&D)")  # names no simulation
    {}
    """
    tokens = []  # (word, in parentheses)
    for raw in re.split(r"[\s_]+", text):
        word = raw.strip("()[],;:")
        if word:
            tokens.append((word, raw.startswith("(")))
    plain = [(i, w) for i, (w, paren) in enumerate(tokens) if not paren]
    words = [w for _, w in plain]
    found: dict[str, str] = {}
    project = next((_PROJECTS[w] for w in words if w in _PROJECTS), None)
    domain = next((w for w in words if _DOMAIN.match(w)), None)
    if domain:
        project = project or "CORDEX"
    if project:
        found["project"] = project
    if domain:
        found["domain"] = domain
    if project == "CORDEX":
        found["activity_id"] = "CORDEX"
    e = next((k for k, w in enumerate(words) if _EXPERIMENT.match(w)), None)
    if e is None:
        return {} if project is None else found
    found["experiment_id"] = words[e]
    before = words[e - 1] if e >= 1 else None
    model = before if before and before not in _PROJECTS and not _DOMAIN.match(before) else None
    model = model if model and _MODEL.match(model) else None
    after = words[e + 1 :]
    if after and _MEMBER.match(after[0]):
        found["member_id"] = after[0]
        rcm = after[1] if len(after) > 1 else None
        if project == "CORDEX" and rcm and _MODEL.match(rcm) and rcm not in _FREQUENCIES:
            found["source_id"] = rcm  # DRIVING_experiment_member_RCM_version
            if model:
                found["driving_source_id"] = model
            model = None
    if model:
        found["source_id"] = model
        m = plain[e - 1][0]  # the model's place among all tokens
        if project == "CORDEX" and m + 1 < len(tokens) and tokens[m + 1][1]:
            found["driving_source_id"] = tokens[m + 1][0]
        cmip = project is not None and project != "CORDEX"
        if cmip and e >= 3 and words[e - 3] in _PROJECTS and _MODEL.match(words[e - 2]):
            found["institution_id"] = words[e - 2]
    frequency = next((w for w in words if w in _FREQUENCIES), None)
    if frequency:
        found["frequency"] = frequency
    return found


def _product(texts: list[str]) -> dict[str, str]:
    """``activity_id`` and ``source_id`` of an observation or reanalysis product, if named."""
    for pattern, activity, source in PRODUCTS:
        if any(pattern.search(t) for t in texts):
            return {"activity_id": activity, "source_id": source, "experiment_id": NO_EXPERIMENT}
    return {}


def frequency_of(times: Any) -> str | None:
    """``"1hr"``, ``"3hr"``, ``"6hr"``, ``"day"``, ``"mon"`` or ``"yr"`` from time values.

    The most common step between increasing times decides (gaps such as the summers missing
    from a winter-only record do not matter); None for fewer than two times, times out of
    order (e.g. a climatology's) or another step.

    Examples
    --------
    >>> winters = np.concatenate([np.arange("2000-01-01", "2000-03-01", dtype="datetime64[D]"),
    ...                           np.arange("2000-12-01", "2001-03-01", dtype="datetime64[D]")])
    >>> months = np.arange("2000-01", "2001-01", dtype="datetime64[M]")
    >>> frequency_of(winters), frequency_of(months)
    ('day', 'mon')
    >>> frequency_of(winters[::-1]) is None
    True
    """
    values = np.asarray(times)
    if values.size < 2:
        return None
    if values.dtype.kind == "M":
        values = values.astype("datetime64[ns]")
        days = (values - values[0]) / np.timedelta64(1, "D")
    elif values.dtype == object and hasattr(values.flat[0], "toordinal"):
        try:
            days = np.array([(v - values.flat[0]).total_seconds() / 86400 for v in values.flat])
        except TypeError:
            return None
    else:
        return None
    steps = np.diff(days.astype(np.float64))
    if not (steps > 0).all():
        return None
    rounded, counts = np.unique(np.round(steps, 3), return_counts=True)
    step = float(rounded[np.argmax(counts)])
    return next((name for name, days_, tol in _STEPS if abs(step - days_) <= tol), None)


def classify(path: str | os.PathLike[str], attrs: dict[str, Any]) -> dict[str, str | None]:
    """Facets of a file from its global attributes, completed from its name, then its text.

    Examples
    --------
    >>> f = classify("tas_EUR-44_ICHEC-EC-EARTH_rcp85_r12i1p1_KNMI-RACMO22E_v1_day_2006.nc", {})
    >>> f["project"], f["domain"], f["driving_source_id"], f["source_id"], f["frequency"]
    ('CORDEX', 'EUR-44', 'ICHEC-EC-EARTH', 'KNMI-RACMO22E', 'day')
    >>> classify("data.nc", {"mip_era": "CMIP6", "source_id": "CanESM5"})["source_id"]
    'CanESM5'
    >>> obs = classify("EOBS_Iberia_pr.nc", {"source": "E-OBS v14.0 (ECA&D)"})
    >>> obs["activity_id"], obs["source_id"], obs["experiment_id"]
    ('obs', 'E-OBS', 'none')
    """
    facets = _from_attributes(attrs)
    for key, value in _from_name(Path(path).name.split(".")[0]).items():
        if facets.get(key) is None:
            facets[key] = value
    texts = [str(attrs[k]) for k in ("source", "title") if _text(attrs.get(k))]
    named: dict[str, str] = {}
    for text in texts:
        named = {**facets_from_text(text), **named}  # the first text wins
    if facets.get("experiment_id") is None and named.get("experiment_id") is None:
        named.update(_product(texts))
    for key, value in named.items():
        if facets.get(key) is None:
            facets[key] = value
    if facets.get("frequency") is None and facets.get("table_id") in _TABLE_FREQUENCY:
        facets["frequency"] = _TABLE_FREQUENCY[str(facets["table_id"])]
    return facets


def _data_variables(ds: xr.Dataset) -> list[str]:
    return [
        str(name)
        for name, var in ds.data_vars.items()
        if var.ndim >= 1 and not _NOT_DATA.search(str(name))
    ]


def _time_range(ds: xr.Dataset) -> tuple[str | None, str | None]:
    if "time" not in ds.coords or ds["time"].size == 0:
        return None, None
    values = ds["time"].values
    if not (np.issubdtype(values.dtype, np.datetime64) or values.dtype == object):
        return None, None
    first, last = values.min(), values.max()

    def iso(v: Any) -> str:
        return (
            str(pd.Timestamp(v).date()) if isinstance(v, np.datetime64) else v.strftime("%Y-%m-%d")
        )

    return iso(first), iso(last)


def _open(path: Path) -> xr.Dataset:
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    if path.suffix == ".zarr" or (path / ".zgroup").exists() or (path / "zarr.json").exists():
        return xr.open_zarr(path, decode_times=coder, consolidated=None)
    return xr.open_dataset(path, decode_times=coder, engine="netcdf4")


def _link_problem(path: Path, root: Path) -> str | None:
    """Why the symbolic link ``path`` is left out of the catalog (None: keep it).

    A catalog's paths must stay inside its root (:func:`esmscale.io.catalog.load_catalog`
    refuses the whole catalog otherwise), so a link leading out of the scanned folder is
    reported, as is a broken one. A linked folder inside it is scanned at its real path.
    """
    try:
        if not path.is_symlink():
            return None
    except OSError:  # e.g. a path too long to stat: listing it fails too, and is reported
        return None
    target = Path(os.path.realpath(path))
    if not target.exists():
        return f"a broken link (to {target}, which does not exist)"
    if not target.is_relative_to(root):
        return (
            f"a link to {target}, outside the scanned folder; a catalog's paths must stay "
            "inside its root: scan that folder itself, or move the files into this one"
        )
    if target.is_dir() and path.suffix != ".zarr":
        return f"a link to the folder {str(target.relative_to(root))!r}, scanned there"
    return None


def _candidates(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The NetCDF files and Zarr stores under ``folder``, and what was left out, with why."""
    found: list[Path] = []
    left_out: list[tuple[str, str]] = []

    def unreadable(err: OSError) -> None:
        where = Path(err.filename) if err.filename else folder
        rel = str(where.relative_to(folder)) if where.is_relative_to(folder) else str(where)
        left_out.append((rel + "/", f"folder unreadable ({type(err).__name__}: {err.strerror})"))

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        here = Path(root)
        for d in list(dirs):
            reason = _link_problem(here / d, folder)
            if reason is not None:
                left_out.append((str((here / d).relative_to(folder)) + "/", reason))
                dirs.remove(d)
        zarrs = [d for d in dirs if d.endswith(".zarr")]
        found += [here / d for d in zarrs]
        dirs[:] = sorted(d for d in dirs if d not in zarrs and not d.startswith("."))
        for f in files:
            if not f.endswith((".nc", ".nc4", ".netcdf")):
                continue
            reason = _link_problem(here / f, folder)
            if reason is None:
                found.append(here / f)
            else:
                left_out.append((str((here / f).relative_to(folder)), reason))
    return sorted(found), left_out


def build_catalog(folder: str | os.PathLike[str], output: str | os.PathLike[str]) -> CatalogBuild:
    """Scan ``folder`` for NetCDF and Zarr files and write an intake-esm catalog.

    Parameters
    ----------
    folder
        The data folder; its files are scanned recursively. Asset paths in the catalog are
        relative to it (open the catalog with ``root=folder`` / ``--catalog-root`` when the
        catalog lies elsewhere).
    output
        The JSON file to write; the CSV is written beside it (same name, ``.csv``).

    Returns
    -------
    CatalogBuild
        The files written, the table, and the files left out with the reason.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd, xarray as xr
    >>> folder = Path(tempfile.mkdtemp())
    >>> time = pd.date_range("2000-01-01", periods=2)
    >>> da = xr.DataArray(np.ones((2, 2, 2)), dims=("time", "lat", "lon"), coords={"time": time})
    >>> ds = da.to_dataset(name="tas")
    >>> ds.to_netcdf(folder / "tas_day_ESM1_historical_r1i1p1f1_gn_20000101-20000102.nc")
    >>> ds.to_netcdf(folder / "station.nc")  # no facets anywhere: reported, not catalogued
    >>> (folder / "broken.nc").write_bytes(b"not netCDF")
    10
    >>> result = build_catalog(folder, folder / "catalog.json")
    >>> result.table["source_id"].tolist(), [path for path, _ in result.skipped]
    (['ESM1'], ['broken.nc', 'station.nc'])
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise EsmscaleError(
            f"catalog build: {str(folder)!r} is not a folder; give the data folder."
        )
    out = Path(output)
    if out.suffix != ".json":
        raise EsmscaleError(f"catalog build: the output {str(out)!r} must end in .json.")
    rows: list[dict[str, Any]] = []
    candidates, skipped = _candidates(root)
    for path in candidates:
        rel = str(path.relative_to(root))
        try:
            with _open(path) as ds:
                facets = classify(path, dict(ds.attrs))
                variables = _data_variables(ds)
                start, end = _time_range(ds)
                if facets.get("frequency") is None and "time" in ds.coords:
                    facets["frequency"] = frequency_of(ds["time"].values)
        except Exception as err:
            skipped.append((rel, f"unreadable ({type(err).__name__}: {err})"))
            continue
        missing = [k for k in ("source_id", "experiment_id") if facets.get(k) is None]
        if missing:
            skipped.append(
                (
                    rel,
                    (
                        f"not classified: no {' or '.join(missing)} in its attributes (CMIP "
                        "facets, or a model and experiment or a known observation/reanalysis "
                        "product in 'source' or 'title'), and its name follows no CMIP6, CMIP5 "
                        "or CORDEX file-name convention"
                    ),
                )
            )
            continue
        named = facets.get("variable_id")
        chosen = [named] if named and named in variables else variables
        if not chosen:
            skipped.append((rel, "no data variable with dimensions"))
            continue
        time_range = (
            (start.replace("-", "") + "-" + end.replace("-", "")) if start and end else None
        )
        for variable in chosen:
            row = {**facets, "variable_id": variable, "start_time": start, "end_time": end}
            row["time_range"] = time_range or facets.get("time_range")
            row["path"] = rel
            row["folder"] = str(Path(rel).parent)  # different folders: different datasets
            row["format"] = "zarr" if path.is_dir() else "netcdf"
            rows.append(row)
    skipped.sort()
    table = pd.DataFrame(rows, columns=[*FACETS, "path", "format"]).fillna(UNKNOWN)
    csv = out.with_suffix(".csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv, index=False)
    spec = {
        "esmcat_version": "0.1.0",
        "id": out.stem,
        "description": (
            f"Built by 'esmscale catalog build' from {root}; asset paths are relative to that "
            f"folder. Facets not found in a file's attributes or name are '{UNKNOWN}'."
        ),
        "catalog_file": csv.name,
        "attributes": [{"column_name": c, "vocabulary": ""} for c in FACETS],
        "assets": {"column_name": "path", "format_column_name": "format"},
        "aggregation_control": {
            "variable_column_name": "variable_id",
            "groupby_attrs": list(_GROUPBY),
            "aggregations": [
                {"type": "union", "attribute_name": "variable_id"},
                {
                    "type": "join_existing",
                    "attribute_name": "time_range",
                    "options": {"dim": "time", "coords": "minimal", "compat": "override"},
                },
            ],
        },
    }
    out.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return CatalogBuild(out, csv, table, skipped, root)
