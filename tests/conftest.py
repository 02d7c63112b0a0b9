"""Shared fixtures: tiny synthetic worlds and tiny models so the suite stays fast."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from esmscale.datasets import synthetic_precip

torch.set_num_threads(min(2, os.cpu_count() or 1))

DATA = Path(
    os.environ.get("ESMSCALE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def sample_data(relative: str) -> Path:
    """Path of a file in the real sample data; skip if absent, but fail in CI (CI=true)."""
    path = DATA / relative
    if not path.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"sample data {path} is missing in CI; set ESMSCALE_DATA")
        pytest.skip(f"sample data {path} not found (set ESMSCALE_DATA to ../shared/data)")
    return path


@pytest.fixture(scope="session")
def small_obs():
    """32x32 synthetic precipitation, 40 days."""
    return synthetic_precip(32, 32, 40, seed=3)


@pytest.fixture(scope="session")
def tiny_train_config():
    from esmscale import TrainConfig

    return TrainConfig(
        steps=6,
        batch_size=4,
        patch_size=16,
        block_out_channels=(8, 16),
        checkpoint_every=3,
        ema_decay=0.9,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved, untrained tiny consistency model with a calibrated t* of 0.3."""
    from esmscale import ConsistencyConfig, ConsistencyModel
    from esmscale.models.transforms import DataTransform

    torch.manual_seed(0)
    model = ConsistencyModel(
        ConsistencyConfig(
            block_out_channels=(8, 16),
            patch_size=8,
            transform=DataTransform(log_max=5.0),
            t_star=0.3,
        )
    )
    path = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(path)
    return path
