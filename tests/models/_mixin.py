"""Shared model tests: subclass and implement ``make_model`` and ``make_inputs``."""

from __future__ import annotations

import torch

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
    """Save/load round trip and determinism for any ``nn.Module`` with ``save_pretrained``."""

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
