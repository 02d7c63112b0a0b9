from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import esmscale
from esmscale import ConsistencyConfig, ConsistencyModel, EsmscaleError
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.downscaling import methods
from esmscale.models.sampler import bridge_sample, field_noise
from esmscale.models.transforms import DataTransform

KW = {"tile": 16, "halo": 4}


@pytest.fixture(scope="module")
def esm():
    return synthetic_esm(synthetic_precip(32, 32, 3, seed=1))


@pytest.fixture(scope="module")
def cm():
    torch.manual_seed(0)
    return ConsistencyModel(
        ConsistencyConfig(
            block_out_channels=(8, 16),
            patch_size=8,
            transform=DataTransform(log_max=5.0),
            t_star=0.3,
        )
    )


@pytest.fixture(scope="module")
def diffusion(small_obs, tiny_train_config):
    cfg = dataclasses.replace(tiny_train_config, objective="diffusion")
    model = esmscale.train(small_obs, cfg, progress=False)
    model.config = model.config.replace(t_star=0.3)
    return model


def test_registry_lists_names_in_errors():
    assert {
        "cm",
        "cm-multistep",
        "diffusion-bridge",
        "bilinear",
        "conservative",
        "qdm-bilinear",
    } <= set(methods.available())
    with pytest.raises(EsmscaleError, match=r"no downscaling method named 'nearest-neighbour'"):
        methods.get("nearest-neighbour")
    with pytest.raises(EsmscaleError, match=r"known downscaling methods: \[.*'bilinear', 'cm'"):
        methods.get("nearest-neighbour")


def test_register_refuses_a_taken_name_and_adds_new_ones():
    with pytest.raises(EsmscaleError, match="'cm' is already registered"):
        methods.register("cm")(lambda obj, model, **kw: obj)

    @methods.register("identity-for-test")
    def _identity(obj, model, **kwargs):
        return obj

    try:
        assert methods.get("identity-for-test") is _identity
        assert "identity-for-test" in methods.available()
    finally:
        methods.METHODS._unregister("identity-for-test")


@pytest.mark.parametrize("name", ["bilinear", "conservative"])
def test_interpolation_baselines(esm, name):
    out = esm.esm.downscale(method=name).pr
    assert out.dims == ("member", "time", "lat", "lon")
    assert out.shape == (1, 3, 32, 32)
    assert out.attrs["units"] == "mm day-1"
    assert out.attrs["esmscale_method"] == name
    np.testing.assert_allclose(float(out.mean()), float(esm.pr.mean()), rtol=0.02)
    # the network methods' options are accepted and ignored, anything else is refused
    same = esm.esm.downscale(method=name, members=4, seed=3, t_star=0.2, tile=8).pr
    np.testing.assert_array_equal(same.values, out.values)
    with pytest.raises(EsmscaleError, match=r"do not take \['colour'\]"):
        esm.esm.downscale(method=name, colour="red")


def test_conservative_preserves_block_means(esm):
    out = esm.esm.downscale(method="conservative").pr[0]
    np.testing.assert_allclose(
        out.coarsen(lat=4, lon=4).mean().values, esm.pr.values, rtol=1e-5, atol=1e-5
    )


def test_multistep_differs_from_one_step(esm, cm):
    one = esm.esm.downscale(cm, method="cm", **KW).pr.values
    two = esm.esm.downscale(cm, method="cm-multistep", steps=2, **KW).pr.values
    assert not np.array_equal(one, two)
    assert np.isfinite(two).all()


def test_diffusion_bridge_runs_and_needs_a_diffusion_model(esm, cm, diffusion):
    out = esm.esm.downscale(diffusion, method="diffusion-bridge", steps=5, **KW).pr
    assert out.attrs["esmscale_sampler"] == "bridge"
    assert np.isfinite(out.values).all()
    with pytest.raises(EsmscaleError, match="objective='diffusion'"):
        esm.esm.downscale(cm, method="diffusion-bridge", steps=5, **KW)
    with pytest.raises(EsmscaleError, match="objective='consistency'"):
        esm.esm.downscale(diffusion, method="cm", **KW)


def test_bridge_sample_kernel_shapes(diffusion):
    x = np.zeros((3, 16, 16), np.float32)
    noise = np.stack(
        [np.stack([field_noise(0, 0, t, (16, 16), step=s) for t in range(3)]) for s in range(4)]
    )
    out = bridge_sample(diffusion, x, 0.3, noise, batch_size=2)
    assert out.shape == (3, 16, 16)
    assert np.isfinite(out).all()
    with pytest.raises(EsmscaleError, match="at least one step"):
        bridge_sample(diffusion, x, 0.3, noise[:1])


def test_qdm_bilinear_reduces_intensity_bias():
    truth = synthetic_precip(32, 32, 300, seed=5)
    coarse = synthetic_esm(truth)  # intensity bias 0.8, drizzle 0.3 mm/day
    ref = truth.pr
    out = coarse.esm.downscale(method="qdm-bilinear", reference=truth, historical=coarse).pr
    raw = coarse.esm.downscale(method="bilinear").pr
    q = 0.95
    err_raw = abs(float(raw.quantile(q)) - float(ref.quantile(q)))
    err_qdm = abs(float(out.quantile(q)) - float(ref.quantile(q)))
    assert err_qdm < err_raw
    with pytest.raises(EsmscaleError, match="reference"):
        coarse.esm.downscale(method="qdm-bilinear")


def test_noise_only_control_skips_the_network(esm, cm):
    ctrl = esm.esm.downscale(cm, method="noise-only", members=2, **KW).pr
    out = esm.esm.downscale(cm, method="cm", members=2, **KW).pr
    assert ctrl.attrs["esmscale_sampler"] == "noise-only"
    assert not np.array_equal(ctrl.values, out.values)
    # same noise: members differ from each other in both
    assert not np.array_equal(ctrl.values[0], ctrl.values[1])
