"""Safe checkpoint files: ``model.safetensors`` + ``config.json``, written atomically.

A checkpoint is a directory holding ``model.safetensors`` (tensors, with the JSON config also
embedded in the safetensors metadata so the file alone is self-describing) and ``config.json``.
Pickle-based files (``.pt``, ``.pth``, ``.ckpt``, ``.bin``, ``.pkl``) are refused: unpickling can
run arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from esmscale.errors import CheckpointError

__all__ = [
    "FORMAT_VERSION",
    "file_sha256",
    "optimizer_tensors",
    "read_checkpoint",
    "restore_optimizer",
    "strip_prefix",
    "write_checkpoint",
]

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_MAX_HEADER = 100 * 1024 * 1024
_PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle"}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "empty"
    >>> _ = path.write_bytes(b"")
    >>> file_sha256(path)[:16]  # the sha256 of no bytes
    'e3b0c44298fc1c14'
    """
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checkpoint(
    directory: str | os.PathLike[str], tensors: dict[str, torch.Tensor], config: dict[str, Any]
) -> Path:
    """Write ``tensors`` and ``config`` to ``directory`` atomically.

    Files are first written to a temporary sibling directory and then moved into place, so an
    interrupted write never leaves a half-written checkpoint behind; an existing checkpoint at
    ``directory`` is replaced only once the new one is complete.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "ckpt"
    >>> path = write_checkpoint(folder, {"w": torch.ones(2, 3)}, {"name": "toy"})
    >>> sorted(p.name for p in folder.iterdir())
    ['config.json', 'model.safetensors']
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    config = {**config, "format_version": FORMAT_VERSION}
    text = json.dumps(config, indent=2, sort_keys=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a checkpoint is ordinary data
    try:
        contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(contiguous, str(tmp / WEIGHTS_NAME), metadata={"config": text})
        (tmp / CONFIG_NAME).write_text(text + "\n")
        (tmp / WEIGHTS_NAME).chmod(0o666 & ~umask)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            if old.exists():
                shutil.rmtree(old)
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old)
        else:
            tmp.rename(directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _check_header(path: Path) -> dict[str, Any]:
    """Validate the safetensors header without loading tensors; return its metadata."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(
                f"{path}: file is truncated ({size} bytes); re-download or retrain."
            )
        (n,) = struct.unpack("<Q", head)
        plausible = n <= _MAX_HEADER and n + 8 <= size and f.read(1) == b"{"
        if not plausible and (head[:1] == b"\x80" or head[:2] == b"PK"):
            raise CheckpointError(
                f"{path}: this is a pickle/zip (torch.save) file, not safetensors; esmscale never "
                "unpickles files because that can run code. Convert it with "
                "safetensors.torch.save_file in a trusted environment."
            )
        f.seek(8)
        if n > _MAX_HEADER or n + 8 > size:
            raise CheckpointError(
                f"{path}: safetensors header claims {n} bytes but the file has {size}; the file is "
                "truncated or corrupt."
            )
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{path}: safetensors header is not valid JSON ({err}).") from err
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return meta if isinstance(meta, dict) else {}


def _resolve(path: Path) -> tuple[Path, Path | None]:
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path}: {path.suffix} files are pickles, which esmscale refuses to load (unpickling "
            "can run arbitrary code). Save the weights with save_pretrained() or "
            "safetensors.torch.save_file and load that instead."
        )
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if not weights.exists():
            found = sorted(p.name for p in path.iterdir())
            raise CheckpointError(
                f"{path}: no {WEIGHTS_NAME} in this directory (found {found}); point to a "
                "directory written by save_pretrained()."
            )
        config = path / CONFIG_NAME
        return weights, config if config.exists() else None
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or directory.")
    return path, None


def read_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """Read a checkpoint directory or ``.safetensors`` file.

    Returns
    -------
    tensors, config, sha256
        The tensors, the config (``config.json`` if present, else the embedded metadata) and the
        sha256 of the weights file.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "ckpt"
    >>> _ = write_checkpoint(folder, {"w": torch.ones(2, 3)}, {"name": "toy"})
    >>> tensors, config, sha = read_checkpoint(folder)
    >>> tuple(tensors["w"].shape), config["name"], sha == file_sha256(folder / "model.safetensors")
    ((2, 3), 'toy', True)
    """
    weights, config_file = _resolve(Path(path))
    meta = _check_header(weights)
    if config_file is not None:
        config = json.loads(config_file.read_text())
    elif "config" in meta:
        config = json.loads(meta["config"])
    else:
        raise CheckpointError(
            f"{weights}: no config.json beside it and no config in its metadata; esmscale needs "
            "the config to rebuild the model. Save with save_pretrained()."
        )
    version = config.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{weights}: checkpoint format version {version} is newer than this esmscale "
            f"supports ({FORMAT_VERSION}); upgrade esmscale (pip install -U esmscale)."
        )
    try:
        tensors = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(
            f"{weights}: cannot read tensors ({err}); the file is corrupt."
        ) from err
    return tensors, config, file_sha256(weights)


# training state ---------------------------------------------------------------------------------
def strip_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` whose keys start with ``prefix``, with the prefix removed.

    Examples
    --------
    >>> sorted(strip_prefix({"ema.w": torch.ones(1), "online.w": torch.zeros(1)}, "ema."))
    ['w']
    """
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_tensors(
    opt: torch.optim.Optimizer, prefix: str = "opt."
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """An optimizer's state as flat tensors (``{prefix}{param}.{name}``) and its param groups.

    The tensors go into a safetensors file and the (JSON-able) param groups into its config;
    :func:`restore_optimizer` inverts this, so training resumes exactly (no pickle involved).

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = torch.optim.Adam([w], lr=0.1)
    >>> w.sum().backward()
    >>> opt.step()
    >>> tensors, groups = optimizer_tensors(opt)
    >>> sorted(tensors), groups[0]["lr"]
    (['opt.0.exp_avg', 'opt.0.exp_avg_sq', 'opt.0.step'], 0.1)
    """
    sd = opt.state_dict()
    tensors = {
        f"{prefix}{i}.{k}": torch.as_tensor(v).clone()
        for i, st in sd["state"].items()
        for k, v in st.items()
    }
    return tensors, sd["param_groups"]


def restore_optimizer(
    opt: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    param_groups: list[dict[str, Any]],
    prefix: str = "opt.",
) -> None:
    """Load the state written by :func:`optimizer_tensors` into ``opt`` (other keys ignored).

    Examples
    --------
    Save an Adam state through a checkpoint and resume it in a fresh optimizer:

    >>> import tempfile
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = torch.optim.Adam([w], lr=0.1)
    >>> w.sum().backward()
    >>> opt.step()
    >>> tensors, groups = optimizer_tensors(opt)
    >>> folder = Path(tempfile.mkdtemp()) / "state"
    >>> _ = write_checkpoint(folder, {"w": w.detach(), **tensors}, {"param_groups": groups})
    >>> saved, config, _ = read_checkpoint(folder)
    >>> fresh = torch.optim.Adam([torch.nn.Parameter(saved["w"])], lr=0.5)
    >>> restore_optimizer(fresh, saved, config["param_groups"])  # "w" is not an "opt." key
    >>> fresh.param_groups[0]["lr"], torch.equal(fresh.state_dict()["state"][0]["exp_avg"],
    ...                                          opt.state_dict()["state"][0]["exp_avg"])
    (0.1, True)
    """
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in strip_prefix(tensors, prefix).items():
        i, k = key.split(".", 1)
        state.setdefault(int(i), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": param_groups})
