"""The model catalog: shipped models (``catalog.json`` in this folder) and the user's own folders.

Every model is a folder written by ``save_pretrained`` (``model.safetensors`` + ``config.json``).
The shipped ones are listed in ``esmscale/pretrained/catalog.json`` with their variable, units,
grid spacing, factor, training data, t*, and the sha256 and size of their weights. A user adds a
folder of their own models (each subfolder one model, named by the subfolder) with
:func:`register_model_folder` or the environment variable ``ESMSCALE_MODELS`` (folders separated
by ``os.pathsep``). ``esmscale models`` prints the catalog.

A model is named ``NAME`` or pinned as ``NAME@sha256:HEX``: a pinned name loads only if the
weights have that sha256, and every load of a catalogued model checks the file against the
catalog, so a changed or corrupted file is refused with both hashes named.

Examples
--------
>>> [e.name for e in model_catalog() if e.source == "shipped"]
['synthetic-pr-4x']
>>> entry = resolve_model("synthetic-pr-4x")
>>> entry.variable, entry.units, entry.factor, entry.t_star
('pr', 'mm day-1', 4, 0.25)
>>> resolve_model("synthetic-pr-4x@sha256:" + entry.sha256).name
'synthetic-pr-4x'
>>> parse_model_spec("my-model@sha256:" + "ab" * 32)[0]
'my-model'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from esmscale.errors import EsmscaleError

__all__ = [
    "CATALOG_FILE",
    "ENV_VAR",
    "ModelEntry",
    "format_table",
    "model_catalog",
    "parse_model_spec",
    "register_model_folder",
    "registered_folders",
    "resolve_model",
    "verify_sha256",
]

_HERE = Path(__file__).resolve().parent
#: The catalog of the models shipped in the package.
CATALOG_FILE = _HERE / "catalog.json"
#: Environment variable naming folders of user models (separated by ``os.pathsep``).
ENV_VAR = "ESMSCALE_MODELS"
_WEIGHTS = "model.safetensors"
_CONFIG = "config.json"
_PIN = re.compile(r"^(?P<name>.+?)@sha256:(?P<sha>[0-9a-fA-F]*)$")
_FOLDERS: list[Path] = []


@dataclass(frozen=True)
class ModelEntry:
    """One model of the catalog.

    Attributes
    ----------
    name
        What ``load_model`` and ``--model`` take.
    path
        The folder with ``model.safetensors`` and ``config.json``.
    variable, units
        The variable the model was trained on and its units.
    grid_spacing
        Grid spacing of the training data, in degrees (None where the config lacks it).
    factor
        Downscaling factor the model is meant for.
    training_data
        What the model was trained on.
    t_star
        The noise level stored with the model (None: not calibrated).
    sha256, size
        Hex sha256 and size in bytes of ``model.safetensors``.
    source
        ``"shipped"`` or the user folder that holds the model.

    Examples
    --------
    >>> entry = resolve_model("synthetic-pr-4x")
    >>> entry.source, entry.grid_spacing, entry.size > 0
    ('shipped', 0.25, True)
    >>> sorted(entry.to_dict())[:4]
    ['factor', 'grid_spacing', 'name', 'path']
    """

    name: str
    path: Path
    variable: str
    units: str
    grid_spacing: float | None
    factor: int
    training_data: str
    t_star: float | None
    sha256: str
    size: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields (the path as a string)."""
        return {**asdict(self), "path": str(self.path)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise EsmscaleError(f"{what} {str(path)!r} cannot be read: {err}.") from None


def _shipped() -> list[ModelEntry]:
    spec = _read_json(CATALOG_FILE, "the shipped model catalog")
    entries = []
    for item in spec["models"]:
        folder = (_HERE / item["path"]).resolve()
        if not folder.is_relative_to(_HERE):
            raise EsmscaleError(
                f"shipped model catalog: {item['name']!r} points outside the package "
                f"({item['path']!r}); reinstall esmscale."
            )
        if not (folder / _WEIGHTS).is_file():  # listed only once its weights are installed
            continue
        entries.append(
            ModelEntry(
                name=item["name"],
                path=folder,
                variable=item["variable"],
                units=item["units"],
                grid_spacing=item.get("grid_spacing"),
                factor=int(item["factor"]),
                training_data=item["training_data"],
                t_star=item.get("t_star"),
                sha256=item["sha256"],
                size=int(item["size"]),
                source="shipped",
            )
        )
    return entries


def _user_entry(folder: Path, source: Path) -> ModelEntry:
    cfg = _read_json(folder / _CONFIG, "model config")
    model = cfg.get("model") if isinstance(cfg, dict) else None
    if not isinstance(model, dict):
        raise EsmscaleError(
            f"model folder {str(folder)!r}: {_CONFIG} has no 'model' section; it is not a "
            "folder written by save_pretrained(). Move it out of the models folder "
            f"{str(source)!r}."
        )
    transform = model.get("transform") or {}
    weights = folder / _WEIGHTS
    return ModelEntry(
        name=folder.name,
        path=folder.resolve(),
        variable=str(model.get("variable", "?")),
        units=str(transform.get("units", "?")),
        grid_spacing=model.get("grid_spacing"),
        factor=int(model.get("factor", 0)),
        training_data=str(cfg.get("training_data", f"user model ({model.get('name', '?')})")),
        t_star=model.get("t_star"),
        sha256=_sha256(weights),
        size=weights.stat().st_size,
        source=str(source),
    )


def _folder_entries(folder: Path) -> list[ModelEntry]:
    if not folder.is_dir():
        raise EsmscaleError(
            f"models folder {str(folder)!r} does not exist or is not a folder; give "
            f"register_model_folder() or ${ENV_VAR} a folder whose subfolders were written by "
            "save_pretrained()."
        )
    return [
        _user_entry(sub, folder)
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and (sub / _WEIGHTS).is_file() and (sub / _CONFIG).is_file()
    ]


def register_model_folder(folder: str | os.PathLike[str]) -> list[str]:
    """Add a folder of one's own models to the catalog (for this process).

    Each subfolder holding ``model.safetensors`` and ``config.json`` (as written by
    ``save_pretrained`` or ``esmscale train``) is a model named after the subfolder. The same
    for every process: set ``ESMSCALE_MODELS=/path/to/models``.

    Parameters
    ----------
    folder
        The folder of model folders (``~`` is expanded, as in ``$ESMSCALE_MODELS``).

    Returns
    -------
    list of str
        The names of the models found there.

    Examples
    --------
    >>> import tempfile
    >>> register_model_folder(tempfile.mkdtemp())  # an empty folder: no models yet
    []
    """
    path = Path(folder).expanduser().resolve()
    entries = _folder_entries(path)
    if path not in _FOLDERS:
        _FOLDERS.append(path)
    return [e.name for e in entries]


def registered_folders() -> list[Path]:
    """User model folders: those registered in this process, then ``$ESMSCALE_MODELS``'s.

    Examples
    --------
    >>> all(p.is_absolute() for p in registered_folders())
    True
    """
    env = [
        Path(p).expanduser().resolve() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p
    ]
    return list(dict.fromkeys([*_FOLDERS, *env]))


def model_catalog() -> list[ModelEntry]:
    """Every available model: the shipped ones, then those of the user folders.

    A name found twice is an error naming both folders.

    Examples
    --------
    >>> [(e.name, e.variable, e.factor) for e in model_catalog() if e.source == "shipped"]
    [('synthetic-pr-4x', 'pr', 4)]
    """
    entries = _shipped()
    for folder in registered_folders():
        entries += _folder_entries(folder)
    seen: dict[str, ModelEntry] = {}
    for entry in entries:
        if entry.name in seen:
            raise EsmscaleError(
                f"two models are named {entry.name!r}: {str(seen[entry.name].path)!r} and "
                f"{str(entry.path)!r}; rename one of the folders."
            )
        seen[entry.name] = entry
    return entries


def parse_model_spec(text: str) -> tuple[str, str | None]:
    """Split ``"NAME@sha256:HEX"`` into the name and the pinned hash (None if not pinned).

    Examples
    --------
    >>> parse_model_spec("synthetic-pr-4x")
    ('synthetic-pr-4x', None)
    >>> parse_model_spec("m@sha256:12ab")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: model 'm@sha256:12ab': a pinned hash is the full sha256, ...
    """
    match = _PIN.match(text)
    if match is None:
        if "@" in text:
            raise EsmscaleError(
                f"model {text!r}: pin a model as NAME@sha256:HEX (64 hexadecimal characters, "
                "as `esmscale models` prints them)."
            )
        return text, None
    sha = match["sha"].lower()
    if len(sha) != 64:
        raise EsmscaleError(
            f"model {text!r}: a pinned hash is the full sha256, 64 hexadecimal characters (got "
            f"{len(sha)}); copy it from `esmscale models`."
        )
    return match["name"], sha


def verify_sha256(name: str, expected: str, actual: str, where: str) -> None:
    """Refuse weights whose sha256 is not the one expected, naming both hashes.

    Examples
    --------
    >>> verify_sha256("m", "ab" * 32, "ab" * 32, "m/model.safetensors")  # the same: no error
    >>> verify_sha256("m", "ab" * 32, "cd" * 32, "m/model.safetensors")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: model 'm': checksum mismatch: expected sha256 abab..., but ...
    """
    if actual != expected:
        raise EsmscaleError(
            f"model {name!r}: checksum mismatch: expected sha256 {expected}, but the weights in "
            f"{where} have sha256 {actual}. The file changed or is corrupted; reinstall it, or "
            "pin the hash of the file you mean to use."
        )


def resolve_model(spec: str) -> ModelEntry:
    """The catalog entry of ``NAME`` or ``NAME@sha256:HEX``.

    An unknown name is an error listing the available ones; a pinned hash that is not the
    catalog's is an error naming both hashes.

    Examples
    --------
    >>> resolve_model("synthetic-pr-4x").t_star
    0.25
    >>> resolve_model("no-such-model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: no model named 'no-such-model'; available models: [...
    """
    name, pin = parse_model_spec(spec)
    entries = {e.name: e for e in model_catalog()}
    if name not in entries:
        raise EsmscaleError(
            f"no model named {name!r}; available models: {sorted(entries)} (`esmscale models` "
            f"lists them). Add a folder of your own with register_model_folder() or ${ENV_VAR}."
        )
    entry = entries[name]
    if pin is not None:
        verify_sha256(name, pin, entry.sha256, f"the catalog entry ({entry.path})")
    return entry


def format_table(entries: list[ModelEntry]) -> str:
    """The catalog as a plain-text table (what ``esmscale models`` prints).

    Examples
    --------
    >>> print(format_table([resolve_model("synthetic-pr-4x")]).splitlines()[0])
    ... # doctest: +NORMALIZE_WHITESPACE
    name variable units grid factor t* size sha256 training data
    """
    header = (
        "name",
        "variable",
        "units",
        "grid",
        "factor",
        "t*",
        "size",
        "sha256",
        "training data",
    )
    rows = [header]
    for e in entries:
        grid = f"{e.grid_spacing:g} deg" if e.grid_spacing is not None else "?"
        t_star = f"{e.t_star:g}" if e.t_star is not None else "-"
        rows.append(
            (
                e.name,
                e.variable,
                e.units,
                grid,
                str(e.factor),
                t_star,
                f"{e.size / 1e6:.1f} MB",
                e.sha256,
                e.training_data if len(e.training_data) <= 60 else e.training_data[:57] + "...",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )
