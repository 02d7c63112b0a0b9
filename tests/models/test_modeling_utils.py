import importlib
import json
import sys
from dataclasses import dataclass

import pytest
import torch

from esmscale.errors import EsmscaleError
from esmscale.models import pastnet
from esmscale.models.fno import FNO2d, FNOConfig
from esmscale.models.modeling_utils import PretrainedMixin, config_from_dict
from esmscale.models.pastnet import PastNet
from esmscale.models.simvp import SimVP, SimVPConfig
from tests.forecast._helpers import TINY_PASTNET
from tests.models._mixin import tiny_model


@dataclass(frozen=True)
class _Cfg:
    size: tuple[int, ...] = (1,)
    name: str = "x"


def test_config_from_dict_converts_lists_and_names_unknown_keys():
    assert config_from_dict(_Cfg, {"size": [2, 3]}, tuples=("size",)) == _Cfg(size=(2, 3))
    assert config_from_dict(_Cfg, {"size": [2, 3]}).size == [2, 3]  # only listed fields
    with pytest.raises(EsmscaleError) as err:
        config_from_dict(_Cfg, {"name": "y", "colour": 1, "age": 2})
    assert "_Cfg has unknown keys ['age', 'colour']; known keys: ['name', 'size']" in str(err.value)


def test_every_network_and_config_uses_the_shared_code():
    for net in (tiny_model(), PastNet(TINY_PASTNET.replace(code_dim=4)), SimVP(SimVPConfig())):
        assert isinstance(net, PretrainedMixin)
    assert issubclass(FNO2d, PretrainedMixin)
    # the old names stay importable
    assert pastnet.PretrainedMixin is PretrainedMixin
    assert pastnet.frozen_from_dict is config_from_dict


def test_consistency_checkpoints_record_no_kind(tmp_path):
    """Checkpoints of the consistency model keep their format (no ``model_kind`` key)."""
    directory = tiny_model().save_pretrained(tmp_path / "cm", note="hi")
    cfg = json.loads((directory / "config.json").read_text())
    assert "model_kind" not in cfg
    assert cfg["note"] == "hi"
    assert set(cfg) == {"model", "esmscale_version", "format_version", "note"}


def test_forecast_networks_check_the_kind(tmp_path):
    torch.manual_seed(0)
    directory = SimVP(SimVPConfig(hidden=8)).save_pretrained(tmp_path / "s")
    assert json.loads((directory / "config.json").read_text())["model_kind"] == "simvp"
    with pytest.raises(EsmscaleError, match="not a fno checkpoint \\(model_kind='simvp'\\)"):
        FNO2d.from_pretrained(directory)
    with pytest.raises(EsmscaleError, match="not a pastnet checkpoint \\(model_kind=None\\)"):
        PastNet.from_pretrained(tiny_model().save_pretrained(tmp_path / "cm"))


def test_checkpoint_without_model_section_refused(tmp_path):
    from esmscale.io.checkpoint import write_checkpoint

    directory = write_checkpoint(tmp_path / "x", {"w": torch.zeros(1)}, {"other": 1})
    with pytest.raises(EsmscaleError, match="no 'model' section"):
        SimVP.from_pretrained(directory)


def test_forecast_baselines_is_a_deprecated_alias():
    sys.modules.pop("esmscale.models.forecast_baselines", None)
    with pytest.warns(DeprecationWarning, match="esmscale.models.simvp"):
        old = importlib.import_module("esmscale.models.forecast_baselines")
    assert old.SimVP is SimVP and old.SimVPConfig is SimVPConfig
    assert old.FNO2d is FNO2d and old.FNOConfig is FNOConfig


def test_config_mixin_round_trip_and_replace():
    from esmscale.models.modeling_utils import ConfigMixin

    @dataclass(frozen=True)
    class Cfg(ConfigMixin):
        tuple_fields = ("size",)
        size: tuple[int, ...] = (1,)
        width: int = 2

    cfg = Cfg(size=(3, 4))
    assert cfg.to_dict() == {"size": (3, 4), "width": 2}
    assert Cfg.from_dict({"size": [3, 4], "width": 2}) == cfg
    assert cfg.replace(width=5) == Cfg(size=(3, 4), width=5)
    with pytest.raises(EsmscaleError, match="Cfg has unknown keys"):
        Cfg.from_dict({"height": 1})
