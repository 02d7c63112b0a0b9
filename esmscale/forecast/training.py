"""Train a forecast network (PastNet, SimVP or FNO) on an xarray DataArray.

Windows of ``t_in + t_out`` steps never cross a gap in the time axis; the last
``val_fraction`` of the time axis is held out for validation and early stopping; values are
standardised per channel, NaN cells are filled with 0 for the network and excluded from the
loss. Step ``k`` draws its batch from ``SeedSequence(seed, spawn_key=(k,))``, so a run stopped
and resumed from its training state gives the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from esmscale.devices import autocast, autocast_dtype, resolve_device, to_device
from esmscale.errors import EsmscaleError, EsmscaleWarning
from esmscale.forecast.config import ForecastConfig, ModelConfig
from esmscale.forecast.data import (
    Normalisation,
    pad_to_multiple,
    segments,
    time_step,
    to_array,
    window_starts,
)
from esmscale.forecast.forecaster import NETWORKS, NeuralForecaster
from esmscale.forecast.intrinsic import intrinsic_dimension
from esmscale.io.checkpoint import (
    optimizer_tensors,
    read_checkpoint,
    restore_optimizer,
    strip_prefix,
    write_checkpoint,
)
from esmscale.io.rundir import claim_run_dir, config_changes
from esmscale.models.pastnet import Decoder, Encoder, PastNetConfig
from esmscale.prepare.inputs import select_variable
from esmscale.prepare.physics import check_field

__all__ = ["ForecastConfig", "ModelConfig", "choose_code_dim", "train"]

STATE_DIR = "training_state"
MODEL_DIR = "model"


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _lr(step: int, cfg: ForecastConfig) -> float:
    """Linear warm-up over 5 % of the steps, then cosine decay to 1 % (one-cycle-like)."""
    warm = max(cfg.steps // 20, 1)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    frac = (step - warm) / max(cfg.steps - warm, 1)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)


def choose_code_dim(
    data: np.ndarray, mask: np.ndarray, frames: np.ndarray, cfg: ForecastConfig
) -> tuple[int, float, dict[str, torch.Tensor]]:
    """Pick PastNet's code dimension from the intrinsic dimension of encoder latents.

    The encoder and decoder of the discrete branch are first trained briefly as a frame
    autoencoder (``id_warmup_steps``); the Levina-Bickel estimate on the per-cell latent vectors
    of the training frames, rounded up and clipped to ``code_dim_range``, is the code dimension.

    Returns
    -------
    code_dim, estimate, weights
        The dimension, the raw estimate, and the warmed-up encoder/decoder weights.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = rng.normal(size=(20, 1, 16, 16)).astype("float32")  # (frame, channel, y, x)
    >>> cfg = ForecastConfig(
    ...     model=PastNetConfig(hidden=8, res_layers=1), batch_size=4,
    ...     id_warmup_steps=5, id_points=200, code_dim_range=(2, 16),
    ... )
    >>> dim, est, weights = choose_code_dim(data, np.ones_like(data), np.arange(20), cfg)
    >>> dim == min(max(math.ceil(est), 2), 16), sorted({k.split(".")[0] for k in weights})
    (True, ['decoder', 'encoder'])
    """
    mc = cfg.model_config
    assert isinstance(mc, PastNetConfig)
    torch.manual_seed(cfg.seed)
    enc = Encoder(mc.in_channels, mc.hidden, mc.res_layers)
    dec = Decoder(mc.hidden, mc.in_channels, mc.res_layers)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=cfg.lr)
    for step in range(cfg.id_warmup_steps):
        pick = frames[_rng(cfg.seed, step, 1).integers(0, frames.size, cfg.batch_size)]
        x, m = torch.from_numpy(data[pick]), torch.from_numpy(mask[pick])
        loss = _masked_mse(dec(enc(x)), x, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sample = frames[np.linspace(0, frames.size - 1, min(frames.size, 64)).round().astype(int)]
    with torch.no_grad():
        z = torch.cat(
            [enc(torch.from_numpy(data[sample[i : i + 16]])) for i in range(0, sample.size, 16)]
        )
    points = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).numpy()
    est = intrinsic_dimension(points, max_points=cfg.id_points)
    lo, hi = cfg.code_dim_range
    weights = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    weights.update({f"decoder.{k}": v for k, v in dec.state_dict().items()})
    return int(min(max(math.ceil(est), lo), hi)), est, weights


def _prepare(
    da: xr.DataArray | xr.Dataset, cfg: ForecastConfig, check: str = "raise"
) -> dict[str, Any]:
    da = check_field(select_variable(da, cfg.variable), check)
    arr, times = to_array(da)
    values = np.asarray(arr.values, dtype=np.float32)
    n, c, h, w = values.shape
    length = cfg.t_in + cfg.t_out
    segs = segments(times)
    split = round(n * (1.0 - cfg.val_fraction))
    train_starts = window_starts(segs, length, 0, split)
    val_starts = window_starts(segs, length, split, n)
    if train_starts.size == 0:
        longest = max(b - a for a, b in segs)
        raise EsmscaleError(
            f"too few time steps to train: {da.name!r} has {n} steps in {len(segs)} contiguous "
            f"run(s) (longest {longest}); a window needs t_in + t_out = {length} consecutive "
            f"steps in the first {1 - cfg.val_fraction:.0%} of the time axis. Use more data, "
            "shorter t_in/t_out or a smaller val_fraction."
        )
    multiple = cfg.model_config.replace(t_in=cfg.t_in, t_out=cfg.t_out).multiple
    if not cfg.pad and (h % multiple or w % multiple):
        raise EsmscaleError(
            f"grid {h}x{w} of {da.name!r} is not divisible by {multiple} (the patch size / "
            f"encoder stride of {cfg.model_config.kind}); use pad=True, crop the grid or change "
            "patch_size."
        )
    norm = Normalisation.fit(values[:split])
    data = pad_to_multiple(norm.forward(values), multiple)
    mask = pad_to_multiple(np.isfinite(values).astype(np.float32), multiple)
    last = max(int(train_starts.max()) + length, 1)
    info = {
        "variable": str(da.name),
        "units": str(da.attrs.get("units", "")),
        "channels": [str(v) for v in arr[arr.dims[1]].values] if arr.dims[1] in arr.coords else [],
        "time_step": str(time_step(times)),
        "grid": [h, w],
        "train_windows": int(train_starts.size),
        "val_windows": int(val_starts.size),
    }
    return {
        "data": data,
        "mask": mask,
        "norm": norm,
        "train": train_starts,
        "val": val_starts,
        "frames": np.arange(last),
        "channels": c,
        "info": info,
    }


def _batch(
    p: dict[str, Any],
    starts: np.ndarray,
    cfg: ForecastConfig,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, ...]:
    idx = starts[:, None] + np.arange(cfg.t_in + cfg.t_out)[None, :]
    dev = device or torch.device("cpu")
    x = to_device(p["data"][idx], dev)
    m = to_device(p["mask"][idx[:, cfg.t_in :]], dev)
    return x[:, : cfg.t_in], x[:, cfg.t_in :], m


def _evaluate(
    net: Any, p: dict[str, Any], cfg: ForecastConfig, device: torch.device | None = None
) -> float:
    val = p["val"]
    if val.size > cfg.max_val_windows:
        val = val[np.linspace(0, val.size - 1, cfg.max_val_windows).round().astype(int)]
    net.eval()
    num = den = 0.0
    with torch.no_grad():
        for i in range(0, val.size, cfg.batch_size):
            x, y, m = _batch(p, val[i : i + cfg.batch_size], cfg, device)
            num += float((((net(x) - y) ** 2) * m).sum())
            den += float(m.sum())
    net.train()
    return num / max(den, 1.0)


def _save_state(
    path: Path, net: Any, best: dict[str, torch.Tensor], opt: Any, meta: dict[str, Any]
) -> None:
    tensors = {f"online.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best.items()})
    opt_tensors, groups = optimizer_tensors(opt)
    tensors.update(opt_tensors)
    write_checkpoint(path, tensors, {**meta, "param_groups": groups})


def _load_state(path: Path, net: Any, opt: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta, _ = read_checkpoint(path)
    net.load_state_dict(strip_prefix(tensors, "online."))
    restore_optimizer(opt, tensors, meta["param_groups"])
    return strip_prefix(tensors, "best."), meta


_CPU = torch.device("cpu")


@dataclass
class _Run:
    """What a training run carries from step to step (and saves in its training state)."""

    cfg: ForecastConfig
    mcfg: Any
    net: Any
    opt: Any
    best: dict[str, torch.Tensor]
    state: dict[str, Any]
    state_path: Path | None
    device: torch.device = _CPU
    precision: str = "fp32"

    def snapshot(self) -> None:
        """Remember the current weights as the best ones."""
        self.best = {k: v.clone() for k, v in self.net.state_dict().items()}

    def save(self) -> None:
        """Write the training state (if there is an output directory)."""
        if self.state_path is not None:
            meta = {**self.state, "train": self.cfg.to_dict(), "model": self.mcfg.to_dict()}
            _save_state(self.state_path, self.net, self.best, self.opt, meta)


def _state_path(output_dir: str | os.PathLike[str] | None, resume: bool) -> Path | None:
    """``output_dir/training_state`` (None without an output directory); checks ``resume``."""
    state_path = Path(output_dir) / STATE_DIR if output_dir is not None else None
    if resume and (state_path is None or not state_path.exists()):
        raise EsmscaleError(
            f"cannot resume: there is no training state in {state_path};",
            python="train without resume=True first or point output_dir to the earlier run.",
            cli="train without --resume first or point --output to the earlier run.",
        )
    return state_path


def _network_config(
    cfg: ForecastConfig, p: dict[str, Any], state_path: Path | None, resume: bool
) -> tuple[Any, dict[str, torch.Tensor]]:
    """The network config for this data (code_dim resolved) and warm-up weights, if any."""
    mcfg: Any = cfg.model_config.replace(t_in=cfg.t_in, t_out=cfg.t_out, in_channels=p["channels"])
    if resume:
        assert state_path is not None
        meta = read_checkpoint(state_path)[1]
        if meta["train"] != cfg.to_dict():
            raise EsmscaleError(
                f"cannot resume {state_path}: it was written with other settings "
                f"({config_changes(meta['train'], cfg.to_dict())});",
                python="resume with the stored ForecastConfig or use a new output_dir.",
                cli="resume with the stored settings or use a new --output.",
            )
        return type(mcfg).from_dict(meta["model"]), {}
    if isinstance(mcfg, PastNetConfig) and mcfg.use_discrete and mcfg.code_dim == "auto":
        d, est, warm = choose_code_dim(p["data"], p["mask"], p["frames"], cfg.replace(model=mcfg))
        return mcfg.replace(code_dim=d, intrinsic_dim=round(est, 3)), warm
    if isinstance(mcfg, PastNetConfig) and mcfg.code_dim == "auto":
        return mcfg.replace(code_dim=1), {}  # unused without the discrete branch
    return mcfg, {}


def _start(
    cfg: ForecastConfig,
    p: dict[str, Any],
    state_path: Path | None,
    resume: bool,
    device: torch.device | None = None,
) -> _Run:
    """Build the network and optimiser, fresh or from the saved training state."""
    mcfg, warm = _network_config(cfg, p, state_path, resume)
    torch.manual_seed(cfg.seed)
    net = NETWORKS.get(mcfg.kind)(mcfg)
    if warm:
        net.discrete.load_state_dict(warm, strict=False)
    net = net.to(device or torch.device("cpu"))  # initialised on the CPU, then moved
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state: dict[str, Any] = {
        "step": 0,
        "best_loss": math.inf,
        "bad": 0,
        "history": [],
        "stopped": False,
    }
    run = _Run(cfg, mcfg, net, opt, {}, state, state_path, device or torch.device("cpu"))
    run.snapshot()
    if resume:
        assert state_path is not None
        run.best, meta = _load_state(state_path, net, opt)
        run.state = {k: meta[k] for k in state}
    return run


def _step(run: _Run, p: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimiser step on the batch of ``step``; returns the loss and the network's stats."""
    cfg, net, opt = run.cfg, run.net, run.opt
    starts = p["train"][_rng(cfg.seed, step).integers(0, p["train"].size, cfg.batch_size)]
    x, y, m = _batch(p, starts, cfg, run.device)
    for group in opt.param_groups:
        group["lr"] = _lr(step, cfg)
    with autocast(run.device, run.precision):
        pred, stats = net.forward_train(x)
        loss = _masked_mse(pred.float(), y, m) + stats.get(
            "aux_loss", torch.zeros((), device=run.device)
        )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
    opt.step()
    return loss, stats


def _record(
    run: _Run, p: dict[str, Any], done: int, loss: torch.Tensor, stats: dict[str, torch.Tensor]
) -> None:
    """Evaluate after ``done`` steps: history, best weights and early stopping."""
    rec: dict[str, float] = {"step": done, "train_loss": float(loss.item())}
    rec.update({k: float(v) for k, v in stats.items() if k in ("perplexity", "dead_codes")})
    if p["val"].size > 0:
        rec["val_loss"] = _evaluate(run.net, p, run.cfg, run.device)
        if rec["val_loss"] < run.state["best_loss"]:
            run.state["best_loss"], run.state["bad"] = rec["val_loss"], 0
            run.snapshot()
        else:
            run.state["bad"] += 1
            run.state["stopped"] = run.state["bad"] >= run.cfg.patience
    run.state["history"].append(rec)


def _loop(run: _Run, p: dict[str, Any], end: int, progress: bool) -> None:
    """Train from the saved step to ``end`` with evaluations and training-state saves."""
    cfg, state = run.cfg, run.state
    run.net.train()
    bar = tqdm(
        range(int(state["step"]), end),
        initial=int(state["step"]),
        total=cfg.steps,
        disable=not progress,
        desc=f"training {run.mcfg.kind}",
        unit="step",
    )
    for step in bar:
        if state["stopped"]:
            break
        loss, stats = _step(run, p, step)
        done = step + 1
        post: dict[str, Any] = {"loss": f"{loss.item():.4f}"}
        if "perplexity" in stats:
            post.update(ppl=f"{float(stats['perplexity']):.1f}", dead=int(stats["dead_codes"]))
        bar.set_postfix(post)
        if done % cfg.eval_every == 0 or done == cfg.steps:
            _record(run, p, done, loss, stats)
        state["step"] = done
        if done % cfg.checkpoint_every == 0 or done == end or state["stopped"]:
            run.save()
    bar.close()


def _finish(run: _Run, p: dict[str, Any], t0: float) -> NeuralForecaster:
    """The forecaster with the best weights (the last ones without validation data)."""
    state, cfg = run.state, run.cfg
    if p["val"].size > 0 and state["history"]:
        run.net.load_state_dict(run.best)
    info = {
        **p["info"],
        "name": cfg.name or run.mcfg.kind,
        "history": state["history"],
        "steps_done": int(state["step"]),
        "early_stopped": bool(state["stopped"]),
        "train_seconds": round(time.perf_counter() - t0, 3),
        "train": cfg.to_dict(),
    }
    return NeuralForecaster(run.net.cpu(), p["norm"], info)


def train(
    da: xr.DataArray | xr.Dataset,
    config: ForecastConfig | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    check: str = "raise",
    device: str = "cpu",
    precision: str = "fp32",
) -> NeuralForecaster:
    """Train a forecast network on ``da`` with dims (time, y, x) or (time, channel, y, x).

    Parameters
    ----------
    da
        Training data (a Dataset with one gridded variable, or ``config.variable``).
    config
        :class:`ForecastConfig`; defaults (PastNet, 10 -> 10) if None.
    output_dir
        Training state every ``checkpoint_every`` steps in ``output_dir/training_state``; the
        final model in ``output_dir/model``.
    resume
        Continue from ``output_dir/training_state``; the result equals an uninterrupted run.
    overwrite
        Replace a run (finished or not) already in ``output_dir``; without it (or ``resume``)
        such a folder is refused and left untouched.
    progress
        Show a tqdm progress bar with the loss and codebook usage.
    stop_after
        Stop with a saved training state after this many steps (continue with ``resume``).
    check
        Physical check of ``da`` (:mod:`esmscale.prepare.physics`): ``"raise"`` (default),
        ``"warn"`` or ``"off"``.
    device, precision
        Where and in which precision the network trains (:mod:`esmscale.devices`); the
        returned model is on the CPU and a training state resumes on any device.

    Returns
    -------
    NeuralForecaster
        The best model on the validation windows (the last one without validation data);
        ``.info["history"]`` holds the evaluations (loss, perplexity, dead codes).

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray(np.random.default_rng(0).random((30, 8, 8), "float32"),
    ...                   dims=("time", "y", "x"))
    >>> cfg = ForecastConfig(model="fno", t_in=2, t_out=1, steps=3, eval_every=2)
    >>> train(da, cfg, progress=False).t_in
    2
    """
    cfg = config or ForecastConfig()
    autocast_dtype(precision, device)  # an absent device or fp16 on the CPU: refused first
    dev = resolve_device(device)
    t0 = time.perf_counter()
    p = _prepare(da, cfg, check)  # bad input is refused before the output folder is touched
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        claim_run_dir(
            out, (MODEL_DIR, STATE_DIR), resume=resume, overwrite=overwrite, what="forecaster"
        )
    state_path = _state_path(output_dir, resume)
    run = _start(cfg, p, state_path, resume, dev)
    run.precision = precision
    if p["val"].size == 0:
        warnings.warn(
            f"no validation windows (val_fraction={cfg.val_fraction}); early stopping is off "
            "and the last weights are returned.",
            EsmscaleWarning,
            stacklevel=2,
        )
    _loop(run, p, cfg.steps if stop_after is None else min(cfg.steps, int(stop_after)), progress)
    model = _finish(run, p, t0)
    finished = run.state["stopped"] or int(run.state["step"]) >= cfg.steps
    if output_dir is not None and finished:
        model.save_pretrained(Path(output_dir) / MODEL_DIR)
    return model
