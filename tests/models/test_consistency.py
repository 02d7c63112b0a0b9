import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from esmscale.errors import CheckpointError, EsmscaleError
from esmscale.models.consistency import ConsistencyConfig, ConsistencyModel, sigma_schedule
from esmscale.models.transforms import DataTransform
from tests.models._mixin import ModelTestMixin, tiny_config, tiny_model


class TestConsistencyModel(ModelTestMixin):
    def make_model(self):
        return tiny_model(seed=0, t_star=0.3, grid_spacing=0.25, name="tiny")

    def make_inputs(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(3, 1, 8, 16, generator=g)
        t = torch.tensor([0.05, 0.5, 5.0])
        return x, t

    def test_output_shape_and_not_identity(self):
        model = self.make_model()
        x, t = self.make_inputs()
        with torch.inference_mode():
            y = model(x, t)
        assert y.shape == x.shape
        assert not torch.equal(y, x)

    def test_extra_config_saved(self, tmp_path):
        model = self.make_model()
        d = model.save_pretrained(tmp_path / "m", calibration={"t_star": 0.3})
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["calibration"] == {"t_star": 0.3}
        assert "esmscale_version" in cfg
        assert ConsistencyConfig.from_dict(cfg["model"]) == model.config

    def test_pickle_checkpoint_refused(self, tmp_path):
        path = tmp_path / "model.pt"
        torch.save(self.make_model().state_dict(), path)
        with pytest.raises(CheckpointError, match="pickle"):
            ConsistencyModel.from_pretrained(path)

    @pytest.mark.parametrize(
        ("key", "value"), [("block_out_channels", [16, 32]), ("layers_per_block", 2)]
    )
    def test_wrong_architecture_refused(self, tmp_path, key, value):
        # weights whose shapes do not match the config must give the package's own error,
        # not torch's RuntimeError from load_state_dict
        d = tiny_model().save_pretrained(tmp_path / "m")
        cfg = json.loads((d / "config.json").read_text())
        cfg["model"][key] = value
        (d / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(EsmscaleError, match="different architecture"):
            ConsistencyModel.from_pretrained(d)

    def test_missing_tensor_refused(self, tmp_path):
        d = tiny_model().save_pretrained(tmp_path / "m")
        tensors = load_file(str(d / "model.safetensors"))
        tensors.pop("unet.conv_out.bias")
        save_file(tensors, str(d / "model.safetensors"))
        with pytest.raises(EsmscaleError, match="missing"):
            ConsistencyModel.from_pretrained(d)

    def test_config_without_model_section(self, tmp_path):
        d = tiny_model().save_pretrained(tmp_path / "m")
        (d / "config.json").write_text(json.dumps({"format_version": 1}))
        with pytest.raises(EsmscaleError, match="'model'"):
            ConsistencyModel.from_pretrained(d)

    def test_repr(self):
        r = repr(self.make_model())
        assert "tiny" in r
        assert "params=" in r


MODEL = tiny_model(seed=0)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(1, 3),
    h=st.integers(2, 6).map(lambda v: 2 * v),
    w=st.integers(2, 6).map(lambda v: 2 * v),
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(1e-3, 100.0),
)
def test_boundary_condition_exact(b, h, w, seed, scale):
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(b, 1, h, w, generator=g)
    t = torch.full((b,), MODEL.config.sigma_min)
    with torch.inference_mode():
        y = MODEL(x, t)
    assert torch.equal(y, x)


def test_skip_and_out_weights():
    m = MODEL
    tmin = torch.tensor([m.config.sigma_min])
    assert m.c_skip(tmin).item() == 1.0
    assert m.c_out(tmin).item() == 0.0
    t = torch.tensor([0.1, 1.0, 10.0, 80.0], dtype=torch.float64)
    skip, out = m.c_skip(t), m.c_out(t)
    assert torch.all(torch.diff(skip) < 0)
    assert torch.all(torch.diff(out) > 0)
    assert torch.all((skip > 0) & (skip < 1))
    sd = m.config.sigma_data
    torch.testing.assert_close(m.c_in(t), 1.0 / torch.sqrt(t**2 + sd**2))


def test_sigma_schedule():
    s = sigma_schedule(10, 0.002, 80.0)
    assert s[0].item() == pytest.approx(0.002)
    assert s[-1].item() == pytest.approx(80.0)
    assert torch.all(torch.diff(s) > 0)


def test_config_dict_round_trip():
    cfg = tiny_config(
        t_star=0.25,
        grid_spacing=0.1,
        factor=8,
        variable="tas",
        transform=DataTransform(kind="standard", units="K", mean=280.0, std=9.0),
    )
    d = cfg.to_dict()
    assert d["block_out_channels"] == [8, 16]
    assert isinstance(d["transform"], dict)
    assert ConsistencyConfig.from_dict(d) == cfg
    assert ConsistencyConfig.from_dict(json.loads(json.dumps(d))) == cfg


def test_config_unknown_key():
    d = {**tiny_config().to_dict(), "learning_rate": 1e-3}
    with pytest.raises(EsmscaleError, match="learning_rate"):
        ConsistencyConfig.from_dict(d)


def test_config_unknown_transform_key():
    d = tiny_config().to_dict()
    d["transform"]["gamma"] = 1.0
    with pytest.raises(EsmscaleError, match="gamma"):
        ConsistencyConfig.from_dict(d)


def test_config_bad_patch_size():
    with pytest.raises(EsmscaleError, match="patch_size=12 must be a multiple of 8"):
        ConsistencyConfig(block_out_channels=(8, 8, 16, 16), patch_size=12)


def test_config_channels_vs_norm_groups():
    with pytest.raises(EsmscaleError, match="norm_num_groups"):
        ConsistencyConfig(block_out_channels=(8, 12), patch_size=8)
    with pytest.raises(EsmscaleError, match="norm_num_groups"):
        ConsistencyConfig(block_out_channels=(8, 16), norm_num_groups=16, patch_size=8)


def test_config_bad_sigmas():
    with pytest.raises(EsmscaleError, match="sigma_min"):
        tiny_config(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(EsmscaleError, match="sigma_min"):
        tiny_config(sigma_min=0.0)


def test_multiple():
    assert tiny_config().multiple == 2
    assert ConsistencyConfig(block_out_channels=(8, 8, 16, 16), patch_size=16).multiple == 8


@pytest.mark.parametrize("shape", [(1, 8, 8), (8, 8), (2, 2, 8, 8), (1, 1, 1, 8, 8)])
def test_wrong_input_rank(shape):
    with pytest.raises(EsmscaleError, match=r"\(batch, 1, H, W\)"):
        MODEL(torch.zeros(shape), torch.full((1,), 0.5))


@pytest.mark.parametrize("hw", [(7, 8), (8, 9), (5, 5)])
def test_non_multiple_size(hw):
    with pytest.raises(EsmscaleError, match="multiple of 2"):
        MODEL(torch.zeros(1, 1, *hw), torch.full((1,), 0.5))
