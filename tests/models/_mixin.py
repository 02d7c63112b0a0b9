"""Shared model tests: subclass and implement ``make_model`` and ``make_inputs``."""

from __future__ import annotations

import pytest
import torch

from esmscale.errors import CheckpointError, EsmscaleError
from esmscale.models.consistency import ConsistencyConfig, ConsistencyModel
from esmscale.models.transforms import DataTransform


def tiny_config(**changes) -> ConsistencyConfig:
    """The smallest useful model config (2 levels, 8x8 patches)."""
    base = ConsistencyConfig(
        block_out_channels=(8, 16), patch_size=8, transform=DataTransform(kind="log", log_max=5.0)
    )
    return base.replace(**changes) if changes else base


def tiny_model(seed: int = 0, **changes) -> ConsistencyModel:
    """A randomly initialised tiny model in eval mode (seeded, so reproducible)."""
    torch.manual_seed(seed)
    return ConsistencyModel(tiny_config(**changes)).eval()


class ModelTestMixin:
    """Config, save/load round trip and determinism for every esmscale network.

    Every network uses :class:`esmscale.models.modeling_utils.PretrainedMixin`, so these tests
    apply unchanged to the consistency model, PastNet, SimVP and FNO.
    """

    model_class: type = ConsistencyModel

    def make_model(self):
        raise NotImplementedError

    def make_inputs(self) -> tuple:
        raise NotImplementedError

    def _run(self, model, inputs):
        with torch.inference_mode():
            return model(*inputs)

    def test_save_load_round_trip(self, tmp_path):
        model = self.make_model()
        inputs = self.make_inputs()
        ref = self._run(model, inputs)
        directory = model.save_pretrained(tmp_path / "ckpt")
        for source in (directory, directory / "model.safetensors"):
            loaded = self.model_class.from_pretrained(source)
            assert not loaded.training
            assert loaded.config == model.config
            assert loaded.sha256 is not None
            assert len(loaded.sha256) == 64
            assert torch.equal(self._run(loaded, inputs), ref)
            state, ref_state = loaded.state_dict(), model.state_dict()
            assert state.keys() == ref_state.keys()
            assert all(torch.equal(state[k], ref_state[k]) for k in state)

    def test_save_load_twice_same_sha(self, tmp_path):
        model = self.make_model()
        a = self.model_class.from_pretrained(model.save_pretrained(tmp_path / "a"))
        b = self.model_class.from_pretrained(model.save_pretrained(tmp_path / "b"))
        assert a.sha256 == b.sha256

    def test_deterministic(self):
        model = self.make_model()
        inputs = self.make_inputs()
        a = self._run(model, inputs)
        b = self._run(model, inputs)
        assert torch.equal(a, b)
        assert torch.isfinite(a).all()

    def test_config_round_trip_and_unknown_keys(self):
        config = self.make_model().config
        cls = type(config)
        assert cls.from_dict(config.to_dict()) == config
        with pytest.raises(EsmscaleError, match=r"unknown keys \['not_a_field'\]; known keys"):
            cls.from_dict({**config.to_dict(), "not_a_field": 1})

    def test_weights_of_another_architecture_refused(self, tmp_path):
        model = self.make_model()
        directory = model.save_pretrained(tmp_path / "ckpt")
        tensors = dict(model.state_dict())
        tensors.pop(next(iter(tensors)))
        with pytest.raises(EsmscaleError, match="different architecture"):
            self.model_class.load_weights(model.config, tensors, directory)

    def test_pickle_refused(self, tmp_path):
        model = self.make_model()
        path = tmp_path / "weights.pt"
        torch.save(model.state_dict(), path)
        with pytest.raises(CheckpointError, match="pickle"):
            self.model_class.from_pretrained(path)

    def test_num_parameters(self):
        model = self.make_model()
        assert model.num_parameters() == sum(p.numel() for p in model.parameters()) > 0
