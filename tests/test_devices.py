"""Device plumbing (esmscale.devices): CPU tests for CI and GPU tests marked ``gpu``."""

import warnings

import numpy as np
import pytest
import torch

from esmscale.devices import autocast, autocast_dtype, available_devices, model_on, resolve_device
from esmscale.downscaling.arrays import downscale_array
from esmscale.errors import EsmscaleError, EsmscaleWarning
from esmscale.models import sampler
from esmscale.models.consistency import ConsistencyModel
from tests.models._mixin import tiny_model

MODEL = tiny_model(seed=0)
HAS_CUDA = torch.cuda.is_available()
HAS_ACCEL = HAS_CUDA or bool(
    getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
)


def _coarse(nt=2, h=6, w=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(5.0, 30.0, size=(nt, h, w)).astype(np.float32)


# device strings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu ", None, torch.device("cpu")])
def test_cpu_spellings(name):
    assert resolve_device(name) == torch.device("cpu")


@pytest.mark.skipif(HAS_ACCEL, reason="an accelerator is present: 'auto' picks it")
def test_auto_without_accelerator_is_cpu():
    assert resolve_device("auto") == torch.device("cpu")
    assert available_devices() == ["cpu"]


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_absent_cuda_names_the_devices_present(name):
    with pytest.raises(EsmscaleError, match=r"not present on this machine \(devices present: cpu"):
        resolve_device(name)


def test_unknown_device_lists_valid_names():
    with pytest.raises(EsmscaleError, match=r"not a device name.*'cuda:N'.*devices present here"):
        resolve_device("tpu7")


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
def test_absent_device_refused_by_public_functions():
    with pytest.raises(EsmscaleError, match="devices present"):
        downscale_array(MODEL, _coarse(), factor=2, t_star=0.3, device="cuda")


# precision ------------------------------------------------------------------------------------
def test_precision_names():
    assert autocast_dtype("fp32", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(EsmscaleError, match=r"precision='fp8' is unknown; give one of fp32"):
        autocast_dtype("fp8", "cpu")


def test_fp16_refused_on_cpu_with_the_fix():
    with pytest.raises(EsmscaleError, match=r"not supported on the CPU.*use precision='bf16'"):
        autocast_dtype("fp16", "cpu")
    with pytest.raises(EsmscaleError, match="fp16"):
        downscale_array(MODEL, _coarse(), factor=2, t_star=0.3, precision="fp16")


def test_bf16_autocast_on_cpu():
    with autocast("cpu", "bf16"):
        y = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16
    kw = {"factor": 2, "t_star": 0.3, "tile": 16, "halo": 4}
    a = downscale_array(MODEL, _coarse(nt=1), **kw)
    b = downscale_array(MODEL, _coarse(nt=1), precision="bf16", **kw)
    assert b.dtype == np.float32 and b.shape == a.shape  # float32 on the host whatever the dtype
    diff = np.abs(a - b).max()
    assert 0 < diff < 0.05 * float(np.abs(a).max())  # bf16 ran (not identical) and stays close


def test_model_on_never_moves_the_original():
    m = torch.nn.Linear(2, 2)
    assert model_on(m, "cpu") is m
    assert model_on(m, "auto").weight.device.type == resolve_device("auto").type
    assert m.weight.device.type == "cpu"


# out of memory: halve the batch, warn once, go on ---------------------------------------------
class _Limited(torch.nn.Module):
    """A consistency model whose device holds at most ``limit`` fields per call."""

    def __init__(self, model: ConsistencyModel, limit: int) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config
        self.limit = limit
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"cannot hold {x.shape[0]} fields (limit {self.limit})")
        return self.inner(x, t)


def test_out_of_memory_halves_the_batch_and_warns_once(monkeypatch):
    monkeypatch.setattr(sampler, "_FIT", {})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 16, 16)).astype(np.float32)
    noise = rng.standard_normal((1, 5, 16, 16)).astype(np.float32)
    limited = _Limited(MODEL, limit=2)
    with pytest.warns(EsmscaleWarning, match=r"batch 8 ran out of memory.*batch 2, the largest"):
        y = sampler.consistency_sample(limited, x, 0.3, noise, batch_size=8)
    assert limited.calls[:3] == [8, 4, 2]
    ref = sampler.consistency_sample(MODEL, x, 0.3, noise, batch_size=2)
    np.testing.assert_array_equal(y, ref)
    limited.calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call starts at the batch that fit, silently
        y2 = sampler.consistency_sample(limited, x, 0.3, noise, batch_size=8)
    assert set(limited.calls) == {2}
    np.testing.assert_array_equal(y2, ref)


def test_out_of_memory_at_batch_one_is_an_error(monkeypatch):
    monkeypatch.setattr(sampler, "_FIT", {})
    x = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(EsmscaleError, match=r"out of memory on cpu even at batch 1.*smaller tiles"):
        sampler.consistency_sample(_Limited(MODEL, 0), x, 0.3, np.zeros((1, *x.shape), np.float32))


# training and checkpoints ---------------------------------------------------------------------
def test_train_bf16_and_auto_on_cpu(small_obs, tiny_train_config, tmp_path):
    from dataclasses import replace

    from esmscale import train

    cfg = replace(tiny_train_config, steps=2)
    m = train(small_obs, cfg, progress=False, device="auto", precision="bf16", output_dir=tmp_path)
    assert next(m.parameters()).device.type == "cpu"
    assert all(torch.isfinite(p).all() for p in m.parameters())
    loaded = ConsistencyModel.from_pretrained(tmp_path / "model", device="auto")
    assert next(loaded.parameters()).device.type == resolve_device("auto").type


# GPU tests: run only where a CUDA device is present ------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine (GPU test)")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_gpu_member_matches_cpu(precision):
    a = downscale_array(MODEL, _coarse(), factor=2, t_star=0.3, members=2)
    b = downscale_array(
        MODEL, _coarse(), factor=2, t_star=0.3, members=2, device="cuda", precision=precision
    )
    tol = 1e-3 if precision == "fp32" else 0.05 * float(np.abs(a).max())
    assert np.abs(a - b).max() < tol


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine (GPU test)")
def test_gpu_training_state_resumes_on_cpu(small_obs, tiny_train_config, tmp_path):
    from dataclasses import replace

    from esmscale import train

    cfg = replace(tiny_train_config, steps=4, checkpoint_every=2)
    train(small_obs, cfg, progress=False, device="cuda", output_dir=tmp_path, stop_after=2)
    m = train(small_obs, cfg, progress=False, device="cpu", output_dir=tmp_path, resume=True)
    assert all(torch.isfinite(p).all() for p in m.parameters())
