import pytest

from esmscale.errors import EsmscaleError
from esmscale.forecast import NETWORKS, ForecastConfig
from esmscale.models.fno import FNOConfig
from esmscale.models.simvp import SimVPConfig


def test_network_names_come_from_the_registry():
    assert NETWORKS.available() == ["fno", "pastnet", "simvp"]
    assert isinstance(ForecastConfig(model="fno").model, FNOConfig)
    cfg = ForecastConfig(model=SimVPConfig(hidden=8), t_in=2, t_out=1)
    assert ForecastConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_network_lists_the_known_ones():
    with pytest.raises(EsmscaleError, match=r"ForecastConfig.model='unet' is unknown: .*\['fno'"):
        ForecastConfig(model="unet")
    d = ForecastConfig(model="fno").to_dict()
    d["model"]["kind"] = "unet"
    with pytest.raises(EsmscaleError, match=r"known forecasting networks: \['fno', 'pastnet'"):
        ForecastConfig.from_dict(d)
    with pytest.raises(EsmscaleError, match="available_methods"):
        NETWORKS.get("persistence")
