from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from esmscale import ConsistencyModel, EsmscaleError, TrainConfig, train
from esmscale.datasets import synthetic_temperature
from esmscale.downscaling.training import _n_levels


def _weights(model: ConsistencyModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _equal(a: ConsistencyModel, b: ConsistencyModel) -> bool:
    wa, wb = _weights(a), _weights(b)
    return all(torch.equal(wa[k], wb[k]) for k in wa)


def test_tiny_training_runs_and_is_deterministic(small_obs, tiny_train_config):
    a = train(small_obs, tiny_train_config, progress=False)
    b = train(small_obs, tiny_train_config, progress=False)
    c = train(small_obs, dataclasses.replace(tiny_train_config, seed=1), progress=False)
    assert _equal(a, b)
    assert not _equal(a, c)
    assert a.config.variable == "pr"
    assert a.config.transform.kind == "log"
    assert a.config.grid_spacing == pytest.approx(0.25)
    assert all(torch.isfinite(p).all() for p in a.parameters())


def test_training_changes_weights(small_obs, tiny_train_config):
    torch.manual_seed(tiny_train_config.seed)
    init = ConsistencyModel(
        train(small_obs, dataclasses.replace(tiny_train_config, steps=1), progress=False).config
    )
    trained = train(small_obs, tiny_train_config, progress=False)
    assert not _equal(init, trained)


def test_resume_equals_uninterrupted(small_obs, tiny_train_config, tmp_path):
    full = train(small_obs, tiny_train_config, output_dir=tmp_path / "a", progress=False)
    train(small_obs, tiny_train_config, output_dir=tmp_path / "b", progress=False, stop_after=3)
    assert not (tmp_path / "b" / "model").exists()
    resumed = train(
        small_obs, tiny_train_config, output_dir=tmp_path / "b", resume=True, progress=False
    )
    assert _equal(full, resumed)
    loaded = ConsistencyModel.from_pretrained(tmp_path / "b" / "model")
    assert _equal(loaded, resumed)


def test_resume_needs_state_and_same_config(small_obs, tiny_train_config, tmp_path):
    with pytest.raises(EsmscaleError, match="no training state"):
        train(small_obs, tiny_train_config, output_dir=tmp_path, resume=True, progress=False)
    train(small_obs, tiny_train_config, output_dir=tmp_path, progress=False, stop_after=3)
    other = dataclasses.replace(tiny_train_config, lr=1e-2)
    with pytest.raises(
        EsmscaleError, match=r"other settings \(lr: \S+ \(stored\) -> 0.01 \(now\)\)"
    ):
        train(small_obs, other, output_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(EsmscaleError, match=r"partly trained .* resume=True to continue it"):
        train(small_obs, tiny_train_config, output_dir=tmp_path, progress=False)


def test_nan_cells_are_masked(small_obs, tiny_train_config):
    obs = small_obs.copy(deep=True)
    obs["pr"][:, :10, :12] = np.nan
    model = train(obs, tiny_train_config, progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_temperature_uses_standardisation(tiny_train_config):
    tas = synthetic_temperature(16, 16, 20, seed=0)
    model = train(tas, tiny_train_config, progress=False)
    tr = model.config.transform
    assert tr.kind == "standard"
    assert tr.units == "K"
    assert 270 < tr.mean < 300


def test_train_from_netcdf_path_and_progress(small_obs, tiny_train_config, tmp_path, capsys):
    path = tmp_path / "obs.nc"
    small_obs.to_netcdf(path)
    train(path, dataclasses.replace(tiny_train_config, steps=2), progress=True)
    assert "loss=" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ds: ds.assign(pr=ds.pr * np.nan), "no finite value"),
        (lambda ds: ds.assign(pr=ds.pr * 0.0), "all dry"),
        (lambda ds: ds.isel(lat=slice(0, 8)), "larger than"),
        (lambda ds: ds.assign(pr=ds.pr.assign_attrs(units="furlongs")), "furlongs"),
    ],
)
def test_bad_input_errors(small_obs, tiny_train_config, mutate, message):
    with pytest.raises(EsmscaleError, match=message):
        train(mutate(small_obs), tiny_train_config, progress=False)


def test_constant_temperature_error(tiny_train_config):
    tas = synthetic_temperature(16, 16, 4, seed=0)
    tas["tas"][:] = 280.0
    with pytest.raises(EsmscaleError, match="constant"):
        train(tas, tiny_train_config, progress=False)


def test_discretisation_schedule_doubles():
    cfg = TrainConfig(steps=400, n_start=10, n_end=80)
    sizes = [_n_levels(s, cfg) for s in range(0, 400, 25)]
    assert sizes[0] == 11
    assert sizes[-1] == 81
    assert sizes == sorted(sizes)


def test_config_round_trip_and_unknown_keys():
    cfg = TrainConfig(steps=3, block_out_channels=(8, 16))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(EsmscaleError, match="unknown keys"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(EsmscaleError, match="n_end"):
        TrainConfig(n_start=10, n_end=5)


def test_impossible_observations_are_refused(small_obs, tiny_train_config):
    from esmscale.errors import PhysicalCheckError

    bad = small_obs.assign(pr=(small_obs.pr - 50.0).assign_attrs(small_obs.pr.attrs))
    n = int((bad.pr.values < -0.01).sum())
    with pytest.raises(PhysicalCheckError, match=f"'pr': {n} of {bad.pr.size} values"):
        train(bad, tiny_train_config, progress=False)
    leaked = small_obs.pr.copy(data=small_obs.pr.values.copy())
    leaked[0, 0, 0] = 1e20
    with pytest.raises(PhysicalCheckError, match="fill values that leaked through"):
        train(leaked, tiny_train_config, progress=False)
