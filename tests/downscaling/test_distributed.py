"""Multi-process training: torchrun + DistributedDataParallel on gloo (CPU) vs one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from esmscale import ConsistencyModel, TrainConfig, train
from esmscale.downscaling.training import (
    _consistency_loss,
    _network_data,
    _Place,
)
from esmscale.errors import EsmscaleError

ROOT = Path(__file__).resolve().parents[2]
#: Loss and weight agreement between 2 gloo processes and 1 process with the same global batch
#: (only the order of the floating-point gradient reduction differs). Weights: Adam turns a
#: near-zero gradient whose rounding differs into a full step of lr=3e-4 either way, so a few
#: such steps (measured: 2.0e-4 after 6 steps) are allowed.
LOSS_RTOL = 1e-4
WEIGHT_ATOL = 1e-3


def _cfg() -> TrainConfig:
    return TrainConfig(
        steps=6,
        batch_size=4,
        patch_size=16,
        block_out_channels=(8, 16),
        checkpoint_every=3,
        ema_decay=0.9,
    )


def test_rank_shares_of_a_step_average_to_the_global_loss(small_obs):
    """The arithmetic DDP relies on: the mean of the ranks' losses is the global batch's."""
    cfg = _cfg()
    from esmscale.downscaling.training import _model_config
    from esmscale.prepare.inputs import field_values

    torch.manual_seed(0)
    values = field_values(small_obs["pr"], "mm day-1")
    mcfg = _model_config(cfg, values, "pr", "mm day-1", None)
    data, mask = _network_data(mcfg, values, "pr")
    model = ConsistencyModel(mcfg)
    x = torch.from_numpy(data[:4, None, :16, :16].copy())
    m = torch.from_numpy(mask[:4, None, :16, :16].astype(np.float32))

    def loss(part: slice) -> float:
        rng = np.random.default_rng(7)  # the same draws for every share
        return float(_consistency_loss(model, x[part], m[part], rng, 0, cfg, part))

    shares = [loss(_Place(torch.device("cpu"), rank=r, world=2).part(4)) for r in (0, 1)]
    assert np.isclose(np.mean(shares), loss(slice(0, 4)), rtol=1e-6)


def test_global_batch_must_split_over_the_processes(small_obs, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(EsmscaleError, match=r"batch_size=4 .* 3 training processes"):
        train(small_obs, _cfg(), progress=False)


def _torchrun(obs: Path, out: Path, n: int, *extra: str) -> None:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
        "-m", "esmscale.cli", "train", str(obs), "--output", str(out), "--steps", "6",
        "--batch-size", "4", "--patch-size", "16", "--channels", "8", "16",
        "--checkpoint-every", "3", "--ema-decay", "0.9", "--quiet", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def _losses(out: Path) -> list[float]:
    return json.loads((out / "training_state" / "config.json").read_text())["losses"]


@pytest.mark.slow  # two torchrun launches of 2 processes: ~30-60 s on 2 cores
def test_two_gloo_processes_follow_one_process_and_resume_across_n(small_obs, tmp_path):
    obs = tmp_path / "obs.nc"
    small_obs.to_netcdf(obs)
    cfg = _cfg()
    torch.set_num_threads(1)
    one = train(obs, cfg, progress=False, output_dir=tmp_path / "one")
    _torchrun(obs, tmp_path / "two", 2)
    ref, got = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(got) == len(ref) == 6
    print(
        "max relative loss difference, 2 vs 1 process:",
        np.max(np.abs(np.subtract(got, ref)) / np.abs(ref)),
    )
    np.testing.assert_allclose(got, ref, rtol=LOSS_RTOL)
    two = ConsistencyModel.from_pretrained(tmp_path / "two" / "model")
    for a, b in zip(one.parameters(), two.parameters(), strict=True):
        assert (a - b).abs().max() < WEIGHT_ATOL
    # resume across a change in N: 1 process to step 3, then 2 processes to step 6
    train(obs, cfg, progress=False, output_dir=tmp_path / "mixed", stop_after=3)
    _torchrun(obs, tmp_path / "mixed", 2, "--resume")
    np.testing.assert_allclose(_losses(tmp_path / "mixed"), ref, rtol=LOSS_RTOL)
    mixed = ConsistencyModel.from_pretrained(tmp_path / "mixed" / "model")
    for a, b in zip(one.parameters(), mixed.parameters(), strict=True):
        assert (a - b).abs().max() < WEIGHT_ATOL
