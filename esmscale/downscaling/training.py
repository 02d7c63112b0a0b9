"""Consistency training on high-resolution observations (improved consistency training, iCT).

``objective="diffusion"`` instead trains the same network as an EDM denoiser (denoising score
matching, lognormal noise levels), the model behind the diffusion-bridge baseline.

Recipe (Song & Dhariwal 2023, no teacher and no downloaded weights): pseudo-Huber loss between
``f(x + t_{i+1} z, t_{i+1})`` and the stop-gradient ``f(x + t_i z, t_i)`` with the same ``z``,
weighted by ``1 / (t_{i+1} - t_i)``; noise levels drawn from a discretised lognormal; the number
of discretisation steps doubling from ``n_start`` to ``n_end``; an EMA of the weights is the model
that is returned and saved. Random patches are cropped from random days; NaN cells (e.g. sea) are
filled with the transform's fill value for the network and excluded from the loss.

Every random draw of step ``k`` comes from ``SeedSequence(seed, spawn_key=(k,))``, so a run that
is stopped and resumed from a checkpoint gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from esmscale.devices import autocast, autocast_dtype, grad_scaler, resolve_device, to_device
from esmscale.errors import EsmscaleError
from esmscale.io.checkpoint import (
    optimizer_tensors,
    read_checkpoint,
    restore_optimizer,
    strip_prefix,
    write_checkpoint,
)
from esmscale.io.rundir import claim_run_dir, config_changes
from esmscale.models.consistency import ConsistencyConfig, ConsistencyModel, sigma_schedule
from esmscale.models.modeling_utils import config_from_dict
from esmscale.models.transforms import fit_transform
from esmscale.prepare.inputs import field_values, grid_spacing, open_dataset, select_variable
from esmscale.prepare.physics import check_field
from esmscale.prepare.units import quantity

__all__ = ["TrainConfig", "train"]

STATE_DIR = "training_state"
MODEL_DIR = "model"
#: What a run writes into its output folder (replaced by ``overwrite=True``).
RUN_ENTRIES = (MODEL_DIR, STATE_DIR, "train_config.json")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (frozen; round-trips through :meth:`to_dict` / :meth:`from_dict`).

    Examples
    --------
    >>> cfg = TrainConfig(steps=10, patch_size=16, block_out_channels=(8, 16))
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    steps: int = 2000
    batch_size: int = 16
    patch_size: int = 32
    lr: float = 3e-4
    seed: int = 0
    block_out_channels: tuple[int, ...] = (32, 32, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    n_start: int = 10
    n_end: int = 80
    p_mean: float = -1.1
    p_std: float = 2.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    eps: float = 0.5
    kind: Literal["auto", "log", "standard"] = "auto"
    variable: str | None = None
    factor: int = 4
    name: str = "esmscale-cm"
    checkpoint_every: int = 500
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    objective: Literal["consistency", "diffusion"] = "consistency"

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_out_channels", tuple(self.block_out_channels))
        for name in ("steps", "batch_size", "patch_size", "checkpoint_every", "n_start"):
            if int(getattr(self, name)) < 1:
                raise EsmscaleError(f"TrainConfig.{name}={getattr(self, name)} must be >= 1.")
        if self.n_end < self.n_start:
            raise EsmscaleError(
                f"TrainConfig: n_end={self.n_end} must be >= n_start={self.n_start}."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = dataclasses.asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        return config_from_dict(cls, d)


def _n_levels(step: int, cfg: TrainConfig) -> int:
    """Discretisation size at ``step``: doubling from n_start to n_end (iCT schedule)."""
    stages = math.floor(math.log2(cfg.n_end / cfg.n_start)) + 1
    per_stage = max(cfg.steps // stages, 1)
    return min(cfg.n_start * 2 ** (step // per_stage), cfg.n_end) + 1


def _level_probs(sigmas: torch.Tensor, cfg: TrainConfig) -> np.ndarray:
    """Discretised lognormal probabilities of picking pair ``(i, i+1)``."""
    ls = torch.log(sigmas)
    cdf = torch.special.erf((ls - cfg.p_mean) / (math.sqrt(2.0) * cfg.p_std))
    p = (cdf[1:] - cdf[:-1]).double().numpy()
    return np.asarray(p / p.sum())


def _pseudo_huber(diff: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample pseudo-Huber distance over valid cells, c = 0.00054 sqrt(d)."""
    d = mask.sum(dim=(1, 2, 3)).clamp(min=1.0)
    c = 0.00054 * torch.sqrt(d)
    sq = ((diff * mask) ** 2).sum(dim=(1, 2, 3))
    return torch.sqrt(sq + c**2) - c


def _consistency_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    step: int,
    cfg: TrainConfig,
    part: slice,
) -> torch.Tensor:
    """Improved consistency training (iCT) loss: adjacent noise levels, shared noise.

    The random draws are made for the whole (global) batch on the host and ``part`` of them
    is used with this process's share ``x`` of the batch, so the draws never depend on the
    device or on the number of training processes.
    """
    sig = sigma_schedule(_n_levels(step, cfg), cfg.sigma_min, cfg.sigma_max)
    idx = rng.choice(len(sig) - 1, size=cfg.batch_size, p=_level_probs(sig, cfg))[part]
    shape = (cfg.batch_size, *x.shape[1:])
    z = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)[part]).to(x.device)
    t0 = sig[idx].float().to(x.device)
    t1 = sig[idx + 1].float().to(x.device)
    net = getattr(model, "module", model)  # the target needs no gradient synchronisation
    with torch.no_grad():
        target = net(x + t0.view(-1, 1, 1, 1) * z, t0).float()
    pred = model(x + t1.view(-1, 1, 1, 1) * z, t1).float()
    weight = 1.0 / (t1 - t0)
    return (weight * _pseudo_huber(pred - target, mask)).mean()


def _denoising_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    cfg: TrainConfig,
    part: slice,
) -> torch.Tensor:
    """EDM denoising score matching: lognormal sigma, weight (s^2 + sd^2) / (s sd)^2."""
    shape = (cfg.batch_size, *x.shape[1:])
    z = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)[part]).to(x.device)
    sigma = (
        torch.from_numpy(np.exp(rng.normal(-1.2, 1.2, size=cfg.batch_size)).astype(np.float32))
        .clamp(cfg.sigma_min, cfg.sigma_max)[part]
        .to(x.device)
    )
    view = sigma.view(-1, 1, 1, 1)
    sd = cfg.sigma_data
    weight = (view**2 + sd**2) / (view * sd) ** 2
    err = (model(x + view * z, sigma).float() - x) ** 2 * mask
    per = (weight * err).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp(min=1.0)
    return per.mean()


def _load_obs(
    obs: xr.Dataset | xr.DataArray | str | os.PathLike[str], cfg: TrainConfig, check: str
) -> tuple[np.ndarray, str, str, float | None]:
    if isinstance(obs, str | os.PathLike):
        obs = open_dataset(obs)
    da = check_field(select_variable(obs, cfg.variable), check)
    name = str(da.name)
    q = quantity(da.attrs.get("units"), name)
    units = "mm day-1" if q == "precipitation" else "K"
    values = field_values(da, units)
    return values, name, units, grid_spacing(da)


def _save_state(
    path: Path,
    step: int,
    model: ConsistencyModel,
    ema: ConsistencyModel,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    losses: list[float] | None = None,
) -> None:
    tensors = {f"online.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    opt_tensors, groups = optimizer_tensors(opt)
    tensors.update(opt_tensors)
    meta = {
        "step": step,
        "train": cfg.to_dict(),
        "model": ema.config.to_dict(),
        "param_groups": groups,
        "losses": list(losses or []),
    }
    write_checkpoint(path, tensors, meta)


def train(
    obs: xr.Dataset | xr.DataArray | str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    check: str = "raise",
    device: str = "cpu",
    precision: str = "fp32",
) -> ConsistencyModel:
    """Train a consistency model on high-resolution observations.

    Parameters
    ----------
    obs
        Observations as a Dataset/DataArray with dims ``(time, y, x)`` or a NetCDF/Zarr path.
        Precipitation (units such as ``mm day-1`` or ``kg m-2 s-1``) gets a log transform,
        temperature (``K``/``degC``) a standardisation. NaN cells are masked out of the loss.
    config
        :class:`TrainConfig`; defaults if None.
    output_dir
        If given, a training state is written every ``checkpoint_every`` steps to
        ``output_dir/training_state`` and the final EMA model to ``output_dir/model``.
    resume
        Continue from ``output_dir/training_state``; the result equals an uninterrupted run.
    overwrite
        Replace a run (finished or not) already in ``output_dir``; without it (or ``resume``)
        such a folder is refused and left untouched.
    progress
        Show a progress bar with the loss.
    stop_after
        Stop (with a saved training state) once this many steps are done, e.g. to fit a
        time-limited job; continue later with ``resume=True``.
    check
        Physical check of the observations (:mod:`esmscale.prepare.physics`): ``"raise"``
        (default) stops on negative precipitation, temperatures outside 150..350 K, infinities
        or leaked fill values; ``"warn"`` warns and goes on; ``"off"`` skips it.
    device
        Where the network trains: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"auto"``
        (the first accelerator present, else the CPU); see :mod:`esmscale.devices`. Crops,
        noise levels and noise are drawn on the host from ``(seed, step)``, so the draws do not
        depend on the device, and a training state written on one device resumes on another.
    precision
        ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 adds gradient scaling on CUDA
        and is refused on the CPU).

    Notes
    -----
    Under ``torchrun --nproc-per-node N`` (``WORLD_SIZE`` = N) each process joins a process
    group (NCCL on CUDA devices, one per local rank; gloo on the CPU) and trains a
    :class:`~torch.nn.parallel.DistributedDataParallel` copy on its ``batch_size / N`` share
    of each step's global batch. The crops, noise levels and noise of step ``k`` are drawn
    from ``(seed, k)`` alone, so the run follows the one-process run with the same global
    batch up to floating-point reduction order, and a training state resumes with any N.
    Rank 0 alone writes the training state and the model. The training state records the
    global batch's loss of every step (``losses`` in its ``config.json``).

    Returns
    -------
    ConsistencyModel
        The EMA model in eval mode, on the CPU (functions that use it take ``device=``).

    Examples
    --------
    >>> from esmscale.datasets import synthetic_precip
    >>> obs = synthetic_precip(16, 16, 20, seed=1)
    >>> cfg = TrainConfig(steps=2, batch_size=2, patch_size=16, block_out_channels=(8, 16))
    >>> train(obs, cfg, progress=False).config.patch_size
    16
    """
    cfg = config or TrainConfig()
    autocast_dtype(precision, device)  # an absent device or fp16 on the CPU: refused first
    values, name, units, spacing = _load_obs(obs, cfg, check)  # refused before any file is touched
    place, owned = _join(resolve_device(device), precision, cfg)
    try:
        return _run(
            values,
            name,
            units,
            spacing,
            cfg,
            place,
            output_dir,
            resume,
            overwrite,
            progress and place.rank == 0,
            stop_after,
        )
    finally:
        if owned:
            torch.distributed.destroy_process_group()


def _join(device: torch.device, precision: str, cfg: TrainConfig) -> tuple[_Place, bool]:
    """The place of this process; under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the group.

    Returns the place and whether this call started the process group (and must end it).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Place(device, precision), False
    rank = int(os.environ["RANK"])
    if cfg.batch_size % world:
        raise EsmscaleError(
            f"TrainConfig.batch_size={cfg.batch_size} (the global batch) does not split over "
            f"{world} training processes; use a batch size that is a multiple of {world}."
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    owned = not torch.distributed.is_initialized()
    if owned:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Place(device, precision, rank, world), owned


def _claim(out: Path, place: _Place, resume: bool, overwrite: bool) -> None:
    """Rank 0 claims the output folder; the other ranks learn whether that was refused."""
    error: list[str | None] = [None]
    if place.rank == 0:
        try:
            claim_run_dir(
                out, RUN_ENTRIES, resume=resume, overwrite=overwrite, what="consistency model"
            )
        except EsmscaleError as err:
            if place.world == 1:
                raise
            error = [str(err)]
    if place.world > 1:
        torch.distributed.broadcast_object_list(error, src=0)
        if error[0] is not None:
            raise EsmscaleError(error[0])


def _run(
    values: np.ndarray,
    name: str,
    units: str,
    spacing: Any,
    cfg: TrainConfig,
    place: _Place,
    output_dir: str | os.PathLike[str] | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
    stop_after: int | None,
) -> ConsistencyModel:
    """The training loop of :func:`train` in one process (one rank of ``world``)."""
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        _claim(out, place, resume, overwrite)
    mcfg = _model_config(cfg, values, name, units, spacing)
    data, mask = _network_data(mcfg, values, name)

    torch.manual_seed(cfg.seed)
    model = ConsistencyModel(mcfg).to(place.device)  # initialised on the CPU, then moved
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, losses = _resume_state(out, cfg, model, ema, opt) if resume else (0, [])
    scaler = grad_scaler(place.device, place.precision)
    net: torch.nn.Module = model
    if place.world > 1:
        ids = [place.device.index] if place.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    model.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, int(stop_after))
    bar = tqdm(
        range(start, end),
        initial=start,
        total=cfg.steps,
        disable=not progress,
        desc=f"training {name}",
        unit="step",
    )
    for step in bar:
        loss = _train_step(net, ema, opt, cfg, data, mask, step, place, scaler)
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}")
        done = step + 1
        save = done % cfg.checkpoint_every == 0 or done in (cfg.steps, end)
        if out is not None and save and place.rank == 0:  # one writer: rank 0
            _save_state(out / STATE_DIR, done, model, ema, opt, cfg, losses)
    bar.close()
    ema = ema.cpu().eval()
    if out is not None and end == cfg.steps and place.rank == 0:
        ema.save_pretrained(out / MODEL_DIR, train=cfg.to_dict())
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    if place.world > 1:
        torch.distributed.barrier()  # every rank returns once rank 0 has written
    return ema


def _model_config(
    cfg: TrainConfig, values: np.ndarray, name: str, units: str, spacing: Any
) -> ConsistencyConfig:
    """The network's config for these observations (patch size checked, transform fitted)."""
    _, h, w = values.shape
    p = cfg.patch_size
    if p > h or p > w:
        raise EsmscaleError(
            f"TrainConfig.patch_size={p} is larger than the {name!r} grid ({h}x{w}); use "
            "a smaller patch: "
            f"patch_size <= {min(h, w)} and a multiple of {2 ** (len(cfg.block_out_channels) - 1)}."
        )
    kind = cfg.kind if cfg.kind != "auto" else ("log" if units == "mm day-1" else "standard")
    transform = fit_transform(values, kind=kind, units=units, eps=cfg.eps)
    return ConsistencyConfig(
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        norm_num_groups=cfg.norm_num_groups,
        sigma_min=cfg.sigma_min,
        sigma_max=cfg.sigma_max,
        sigma_data=cfg.sigma_data,
        transform=transform,
        factor=cfg.factor,
        grid_spacing=spacing,
        patch_size=p,
        name=cfg.name,
        variable=name,
        objective=cfg.objective,
    )


def _network_data(
    mcfg: ConsistencyConfig, values: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Observations in the network's space (masked cells filled) and their finite mask."""
    transform = mcfg.transform
    data = transform.forward(values)
    mask = np.isfinite(data)
    if not mask.any(axis=(1, 2)).any():
        raise EsmscaleError(f"variable {name!r} has no finite value; nothing to train on.")
    return np.where(mask, data, transform.fill_value).astype(np.float32), mask


def _resume_state(
    out: Path | None,
    cfg: TrainConfig,
    model: ConsistencyModel,
    ema: ConsistencyModel,
    opt: torch.optim.Optimizer,
) -> tuple[int, list[float]]:
    """Load the saved training state into the networks and optimiser; return its step and the
    loss of every step so far (any device and any number of processes may have written it).
    """
    if out is None or not (out / STATE_DIR).exists():
        raise EsmscaleError(
            f"cannot resume: there is no training state in {out}/{STATE_DIR};",
            python="train without resume=True first or point output_dir to the earlier run.",
            cli="train without --resume first or point --output to the earlier run.",
        )
    tensors, meta, _ = read_checkpoint(out / STATE_DIR)
    if meta["train"] != cfg.to_dict():
        raise EsmscaleError(
            f"cannot resume {out / STATE_DIR}: it was written with other settings "
            f"({config_changes(meta['train'], cfg.to_dict())});",
            python="resume with the stored TrainConfig or start a new output_dir.",
            cli="resume with the stored settings or start a new --output.",
        )
    model.load_state_dict(strip_prefix(tensors, "online."))
    ema.load_state_dict(strip_prefix(tensors, "ema."))
    restore_optimizer(opt, tensors, meta["param_groups"])
    return int(meta["step"]), [float(v) for v in meta.get("losses", [])]


@dataclass(frozen=True)
class _Place:
    """Where this process trains: its device, precision, rank and the number of processes."""

    device: torch.device
    precision: str = "fp32"
    rank: int = 0
    world: int = 1

    def part(self, batch: int) -> slice:
        """The share of a global batch of ``batch`` crops that this rank trains on."""
        n = batch // self.world
        return slice(self.rank * n, (self.rank + 1) * n)


def _train_step(
    model: torch.nn.Module,
    ema: ConsistencyModel,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    data: np.ndarray,
    mask: np.ndarray,
    step: int,
    place: _Place | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """One optimiser step on a batch of random crops (drawn from ``(seed, step)``) + EMA.

    The global batch is drawn on the host from ``(seed, step)`` alone; each of the ``world``
    processes trains on its share (``place.part``), so the crops, levels and noise of a step
    are the same for any device and any number of processes. Returns the global batch's loss.
    """
    place = place or _Place(torch.device("cpu"))
    n_days, h, w = data.shape
    p = cfg.patch_size
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(cfg.seed, spawn_key=(step,))))
    days = rng.integers(0, n_days, cfg.batch_size)
    ys = rng.integers(0, h - p + 1, cfg.batch_size)
    xs = rng.integers(0, w - p + 1, cfg.batch_size)
    part = place.part(cfg.batch_size)
    crops = list(zip(days, ys, xs, strict=True))[part]
    x = np.stack([data[d, i : i + p, j : j + p] for d, i, j in crops])
    m = np.stack([mask[d, i : i + p, j : j + p] for d, i, j in crops])
    xt = to_device(x[:, None], place.device)
    mt = to_device(m[:, None].astype(np.float32), place.device)
    with autocast(place.device, place.precision):
        if cfg.objective == "diffusion":
            loss = _denoising_loss(model, xt, mt, rng, cfg, part)
        else:
            loss = _consistency_loss(model, xt, mt, rng, step, cfg, part)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    decay = min(cfg.ema_decay, (1.0 + step) / (10.0 + step))
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
            pe.mul_(decay).add_(pm.detach(), alpha=1.0 - decay)
    value = loss.detach().float()
    if place.world > 1:
        torch.distributed.all_reduce(value)
        value /= place.world
    return float(value.item())
