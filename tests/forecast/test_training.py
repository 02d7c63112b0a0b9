import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from esmscale.errors import EsmscaleError
from esmscale.forecast import ForecastConfig, NeuralForecaster, train
from esmscale.forecast.data import segments, window_starts
from esmscale.forecast.training import _prepare
from tests.forecast._helpers import djf_times, field, tiny_config


@pytest.fixture(scope="module")
def winters():
    return field(djf_times(3))


@pytest.fixture(scope="module")
def trained(winters):
    return train(winters, tiny_config(), progress=False)


def test_gaps_detected_from_time_spacing(winters):
    segs = segments(winters.time.values)
    assert len(segs) == 3  # three DJF winters
    times = winters.time.values
    for a, b in segs:
        assert (np.diff(times[a:b]) == np.timedelta64(1, "D")).all()


def test_windows_never_cross_gaps(winters):
    cfg = tiny_config()
    p = _prepare(winters, cfg)
    times = winters.time.values
    length = cfg.t_in + cfg.t_out
    for starts in (p["train"], p["val"]):
        spans = times[starts + length - 1] - times[starts]
        assert (spans == np.timedelta64(length - 1, "D")).all()
    assert p["train"].max() + length <= p["val"].min()  # validation strictly after training
    # every possible in-winter window of the training period is used
    split = round(times.size * (1 - cfg.val_fraction))
    expected = window_starts(segments(times), length, 0, split)
    assert np.array_equal(p["train"], expected)


def test_nan_cells_masked_and_kept_nan(winters, trained):
    cfg = tiny_config()
    p = _prepare(winters, cfg)
    assert p["mask"][:, 0, :3, :4].sum() == 0  # sea excluded from the loss
    assert np.isfinite(p["data"]).all()  # filled for the network
    assert p["data"].shape[-2:] == (12, 16)  # already a multiple of 4
    hist = winters.values[None, :3, None]
    out = trained.predict(hist, lead=3)
    assert np.isnan(out[..., :3, :4]).all()
    assert np.isfinite(out[..., 3:, :]).all()
    assert np.isfinite(out[..., :, 4:]).all()


def test_training_records_codebook_usage_and_id(trained):
    hist = trained.info["history"]
    assert hist
    assert {"perplexity", "dead_codes", "val_loss"} <= set(hist[-1])
    cfg = trained.net.config
    assert isinstance(cfg.code_dim, int)
    assert cfg.intrinsic_dim is not None
    assert cfg.code_dim == min(max(int(np.ceil(cfg.intrinsic_dim)), 4), 64)


def test_deterministic_and_resumable(winters, tmp_path):
    cfg = tiny_config(model=tiny_config().model.replace(code_dim=4))
    a = train(winters, cfg, progress=False)
    b = train(winters, cfg, output_dir=tmp_path, stop_after=3, progress=False)
    assert b.info["steps_done"] == 3
    assert not (tmp_path / "model").exists()
    c = train(winters, cfg, output_dir=tmp_path, resume=True, progress=False)
    assert (tmp_path / "model" / "model.safetensors").exists()
    sa, sc = a.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.info["history"] == c.info["history"]
    with pytest.raises(
        EsmscaleError, match=r"other settings \(lr: \S+ \(stored\) -> 0.5 \(now\)\)"
    ):
        train(winters, cfg.replace(lr=0.5), output_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(EsmscaleError, match="already holds a finished forecaster"):
        train(winters, cfg, output_dir=tmp_path, progress=False)


def test_save_load_round_trip(trained, winters, tmp_path):
    path = trained.save_pretrained(tmp_path / "m")
    loaded = NeuralForecaster.from_pretrained(path)
    hist = winters.values[None, 5:8, None]
    np.testing.assert_array_equal(loaded.predict(hist, 4), trained.predict(hist, 4))
    meta = json.loads((path / "config.json").read_text())
    assert meta["model_kind"] == "pastnet"
    assert meta["forecast"]["variable"] == "tas"
    assert len(meta["normalisation"]["mean"]) == 1
    assert loaded.norm == trained.norm


def test_early_stopping(winters):
    cfg = tiny_config(steps=40, eval_every=1, patience=1, lr=0.5)
    m = train(winters, cfg, progress=False)
    assert m.info["early_stopped"]
    assert m.info["steps_done"] < 40


@pytest.mark.parametrize("kind", ["simvp", "fno"])
def test_other_networks_train(winters, kind):
    m = train(winters, tiny_config(model=kind, steps=2), progress=False)
    assert m.predict(winters.values[None, :3, None], 2).shape == (1, 2, 1, 12, 16)


def test_channels_and_padding():
    t = pd.date_range("2000-01-01", periods=40)
    v = np.random.default_rng(0).standard_normal((40, 2, 10, 13)).astype("float32")
    da = xr.DataArray(v, dims=("time", "var", "y", "x"), coords={"time": t, "var": ["u", "v"]})
    m = train(da, tiny_config(), progress=False)
    assert m.channels == 2
    assert m.info["channels"] == ["u", "v"]
    assert m.predict(v[None, :3], 5).shape == (1, 5, 2, 10, 13)
    with pytest.raises(EsmscaleError, match="2 channel"):
        m.predict(v[None, :3, :1], 2)


def test_bad_inputs(winters):
    short = winters.isel(time=slice(0, 4))
    with pytest.raises(EsmscaleError, match="too few time steps"):
        train(short, tiny_config(), progress=False)
    odd = winters.isel(lat=slice(0, 10))
    with pytest.raises(EsmscaleError, match="not divisible by 4"):
        train(odd, tiny_config(pad=False), progress=False)
    with pytest.raises(EsmscaleError, match="forecasting needs"):
        train(winters.isel(time=0), tiny_config(), progress=False)
    with pytest.raises(EsmscaleError, match="unknown"):
        ForecastConfig(model="transformer")
    with pytest.raises(EsmscaleError, match="unknown keys"):
        ForecastConfig.from_dict({"bogus": 1})
    assert ForecastConfig.from_dict(tiny_config().to_dict()) == tiny_config()
