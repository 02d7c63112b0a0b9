"""Tiny backbones shared by the visionkit tests (built once per session, never downloaded)."""

from __future__ import annotations

import pytest
import torch

from visionkit.backbones import ClipBackbone, TinyClipConfig

TINY = TinyClipConfig(
    vision_width=32,
    vision_layers=2,
    vision_heads=2,
    text_width=32,
    text_layers=1,
    text_heads=2,
    embed_dim=16,
)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine, two made these tiny models ~50x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_config() -> TinyClipConfig:
    return TINY


@pytest.fixture
def backbone() -> ClipBackbone:
    """A fresh, frozen, randomly initialised tiny CLIP (cheap: about 50 ms)."""
    return ClipBackbone.from_config(TINY, seed=0)


@pytest.fixture(scope="session")
def saved_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny CLIP saved to a temporary directory."""
    path = tmp_path_factory.mktemp("tiny_clip")
    ClipBackbone.from_config(TINY, seed=0).save_pretrained(path)
    return str(path)


def state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


#: Whether a CUDA device is present (GPU tests are marked ``gpu`` and skipped without one).
HAS_CUDA = torch.cuda.is_available()
#: Whether any accelerator is present (then ``device="auto"`` is not the CPU).
HAS_ACCEL = HAS_CUDA or bool(
    getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
)
#: The devices that must give the default call's results bit for bit here.
CPU_NAMES = [
    "cpu",
    pytest.param(
        "auto",
        marks=pytest.mark.skipif(HAS_ACCEL, reason="an accelerator is present: 'auto' picks it"),
    ),
]
