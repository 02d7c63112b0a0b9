import numpy as np
import pytest

from esmscale.errors import EsmscaleError
from esmscale.forecast.intrinsic import intrinsic_dimension


@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_3d_subspace_in_20d(seed):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((20, 3)))
    points = rng.standard_normal((2000, 3)) @ basis.T + 5.0
    assert intrinsic_dimension(points) == pytest.approx(3.0, rel=0.15)


def test_curved_manifold_and_duplicates():
    rng = np.random.default_rng(2)
    z = rng.uniform(-1, 1, (1500, 2))
    points = np.tanh(z @ rng.standard_normal((2, 12)))
    points = np.concatenate([points, points[:100]])  # duplicates are dropped
    assert intrinsic_dimension(points) == pytest.approx(2.0, rel=0.15)


def test_bad_input():
    with pytest.raises(EsmscaleError, match="k1"):
        intrinsic_dimension(np.zeros((5, 3)))
    with pytest.raises(EsmscaleError, match=r"\(n, d\)"):
        intrinsic_dimension(np.zeros(5))
