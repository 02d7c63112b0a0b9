import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from esmscale.errors import CheckpointError
from esmscale.io.checkpoint import FORMAT_VERSION, file_sha256, read_checkpoint, write_checkpoint


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"a.weight": torch.randn(3, 4, generator=g), "b": torch.arange(5, dtype=torch.int64)}


CONFIG = {"model": {"name": "x", "channels": [8, 16]}, "note": "hello"}


def test_round_trip(tmp_path):
    t = _tensors()
    d = write_checkpoint(tmp_path / "ckpt", t, CONFIG)
    assert d == tmp_path / "ckpt"
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors"]
    tensors, config, sha = read_checkpoint(d)
    assert set(tensors) == set(t)
    for k in t:
        assert torch.equal(tensors[k], t[k])
    assert config == {**CONFIG, "format_version": FORMAT_VERSION}
    assert sha == file_sha256(d / "model.safetensors")
    # the .safetensors file alone is self-describing
    tensors2, config2, sha2 = read_checkpoint(d / "model.safetensors")
    assert config2 == config
    assert sha2 == sha
    assert all(torch.equal(tensors2[k], t[k]) for k in t)


def test_sha256_stable(tmp_path):
    t = _tensors()
    write_checkpoint(tmp_path / "a", t, CONFIG)
    write_checkpoint(tmp_path / "b", t, CONFIG)
    sa = read_checkpoint(tmp_path / "a")[2]
    assert sa == read_checkpoint(tmp_path / "a")[2]
    assert sa == read_checkpoint(tmp_path / "b")[2]
    assert len(sa) == 64


def test_atomic_replace(tmp_path):
    d = tmp_path / "ckpt"
    write_checkpoint(d, {"old": torch.zeros(2)}, {"version": "old"})
    (d / "stray.txt").write_text("from the old checkpoint")
    write_checkpoint(d, {"new": torch.ones(3)}, {"version": "new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors"]
    tensors, config, _ = read_checkpoint(d)
    assert list(tensors) == ["new"]
    assert torch.equal(tensors["new"], torch.ones(3))
    assert config["version"] == "new"


def test_non_contiguous_tensor(tmp_path):
    t = torch.arange(12.0).reshape(3, 4).T
    tensors, _, _ = read_checkpoint(write_checkpoint(tmp_path / "c", {"t": t}, {}))
    assert torch.equal(tensors["t"], t)


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_torch_save_refused(tmp_path, name):
    path = tmp_path / name
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(path)


@pytest.mark.parametrize("suffix", [".pth", ".ckpt", ".bin", ".pkl", ".PT"])
def test_pickle_suffixes_refused(tmp_path, suffix):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(b"anything")
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(path)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("name", ["evil.safetensors", "evil.pkl", "evil.pt"])
def test_malicious_pickle_not_executed(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(path)
    assert not marker.exists()


def test_malicious_pickle_in_directory(tmp_path):
    marker = tmp_path / "pwned"
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "model.safetensors").write_bytes(pickle.dumps(_Evil(marker)))
    (d / "config.json").write_text(json.dumps({"format_version": 1}))
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(d)
    assert not marker.exists()


def test_truncated_file(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x10\x00\x00")
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(path)


def test_truncated_tensor_data(tmp_path):
    d = write_checkpoint(tmp_path / "c", {"w": torch.randn(64, 64)}, CONFIG)
    data = (d / "model.safetensors").read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(path)


def test_header_longer_than_file(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 10_000) + b'{"a": 1}')
    with pytest.raises(CheckpointError, match="claims 10000 bytes"):
        read_checkpoint(path)


def test_header_not_json(tmp_path):
    path = tmp_path / "bad.safetensors"
    body = b"not json at all"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_checkpoint(path)


def test_no_config_anywhere(tmp_path):
    path = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="config"):
        read_checkpoint(path)


@pytest.mark.parametrize("only_file", [False, True])
def test_newer_format_version_refused(tmp_path, only_file):
    d = tmp_path / "future"
    d.mkdir()
    cfg = {"format_version": FORMAT_VERSION + 1}
    save_file(
        {"w": torch.zeros(2)}, str(d / "model.safetensors"), metadata={"config": json.dumps(cfg)}
    )
    if not only_file:
        (d / "config.json").write_text(json.dumps(cfg))
    target = d / "model.safetensors" if only_file else d
    with pytest.raises(CheckpointError, match="upgrade esmscale"):
        read_checkpoint(target)


def test_missing_weights_lists_directory(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "weights.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"model\.safetensors") as info:
        read_checkpoint(d)
    msg = str(info.value)
    assert "config.json" in msg
    assert "weights.pt" in msg


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        read_checkpoint(tmp_path / "nothing.safetensors")


def test_accepts_str_path(tmp_path):
    d = write_checkpoint(str(tmp_path / "s"), _tensors(), CONFIG)
    assert isinstance(d, Path)
    assert read_checkpoint(str(d))[1]["note"] == "hello"


def test_header_length_that_looks_like_pickle_magic_still_loads(tmp_path):
    """A safetensors header whose length's low byte is 0x80 (pickle's magic) is not a pickle."""
    tensors = {"w": torch.zeros(3)}
    for pad in range(300):
        path = write_checkpoint(tmp_path / f"c{pad}", tensors, {"pad": "x" * pad})
        if (path / "model.safetensors").read_bytes()[:1] == b"\x80":
            break
    got, config, _ = read_checkpoint(path)
    assert (path / "model.safetensors").read_bytes()[:1] == b"\x80"
    assert torch.equal(got["w"], tensors["w"])
    assert config["pad"] == "x" * pad


# --------------------------------------------------------------------------- training state
def test_optimizer_state_round_trip_resumes_exactly(tmp_path):
    from esmscale.io.checkpoint import optimizer_tensors, restore_optimizer, strip_prefix

    def make():
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 2)
        return net, torch.optim.AdamW(net.parameters(), lr=0.1)

    def step(net, opt, k):
        x = torch.full((4, 3), float(k))
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        opt.step()

    net, opt = make()
    for k in range(3):
        step(net, opt, k)
    tensors, groups = optimizer_tensors(opt)
    assert all(key.startswith("opt.") for key in tensors)
    tensors.update({f"online.{k}": v for k, v in net.state_dict().items()})
    write_checkpoint(tmp_path / "state", tensors, {"param_groups": groups})

    net2, opt2 = make()
    loaded, cfg, _ = read_checkpoint(tmp_path / "state")
    net2.load_state_dict(strip_prefix(loaded, "online."))
    restore_optimizer(opt2, loaded, cfg["param_groups"])
    for k in range(3, 5):
        step(net, opt, k)
        step(net2, opt2, k)
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_strip_prefix_keeps_only_matching_keys():
    from esmscale.io.checkpoint import strip_prefix

    t = {"ema.a": torch.ones(1), "emax.b": torch.ones(1), "online.a": torch.zeros(1)}
    assert list(strip_prefix(t, "ema.")) == ["a"]
