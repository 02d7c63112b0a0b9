import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esmscale.errors import EsmscaleError
from esmscale.prepare.interp import coarsen_block, upsample_bilinear


@given(c=st.floats(-1e4, 1e4), factor=st.integers(1, 6), h=st.integers(1, 6), w=st.integers(1, 6))
def test_constant_stays_constant(c, factor, h, w):
    out = upsample_bilinear(np.full((2, h, w), c), factor)
    assert out.shape == (2, h * factor, w * factor)
    assert out.dtype == np.float32
    # atol: float32 subnormals may be flushed to zero
    np.testing.assert_allclose(out, np.float32(c), rtol=1e-6, atol=1e-37)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_linear_ramp_is_linear_in_interior(factor):
    h, w = 6, 8
    a, b, c = 0.7, -1.3, 2.0
    yc, xc = np.mgrid[0:h, 0:w].astype(np.float64)
    coarse = a * yc + b * xc + c
    out = upsample_bilinear(coarse, factor)
    # fine cell centres in coarse-cell units (cell-centred alignment)
    yf = (np.arange(h * factor) + 0.5) / factor - 0.5
    xf = (np.arange(w * factor) + 0.5) / factor - 0.5
    expected = a * yf[:, None] + b * xf[None, :] + c
    inner = (slice(factor, -factor), slice(factor, -factor))
    np.testing.assert_allclose(out[inner], expected[inner], atol=1e-5)
    # beyond the outermost centres values are held constant
    np.testing.assert_allclose(out[0, 0], coarse[0, 0], atol=1e-6)
    np.testing.assert_allclose(out[-1, -1], coarse[-1, -1], atol=1e-6)


@pytest.mark.parametrize("factor", [2, 4])
def test_block_mean_recovers_smooth_input(factor):
    h, w = 32, 40
    yc, xc = np.mgrid[0:h, 0:w]
    coarse = np.sin(2 * np.pi * yc / h) * np.cos(2 * np.pi * xc / w) + 3.0
    out = upsample_bilinear(coarse, factor)
    blocks = out.reshape(h, factor, w, factor).mean(axis=(1, 3))
    np.testing.assert_allclose(blocks[1:-1, 1:-1], coarse[1:-1, 1:-1], atol=0.015)
    np.testing.assert_allclose(blocks, coarse, atol=0.1)


def test_factor_one_is_identity():
    x = np.random.default_rng(0).normal(size=(3, 5, 7)).astype(np.float32)
    np.testing.assert_array_equal(upsample_bilinear(x, 1), x)


def test_leading_dims_and_nan_propagation():
    x = np.ones((2, 3, 4, 4))
    x[1, 2, 1, 1] = np.nan
    out = upsample_bilinear(x, 2)
    assert out.shape == (2, 3, 8, 8)
    assert np.isnan(out[1, 2]).any()
    assert not np.isnan(out[1, 2, 6:, 6:]).any()
    assert not np.isnan(out[0]).any()


@pytest.mark.parametrize("factor", [0, -2, 1.5])
def test_bad_factor(factor):
    with pytest.raises(EsmscaleError, match="positive integer"):
        upsample_bilinear(np.ones((4, 4)), factor)


def test_integral_float_factor():
    # 2.0 passes the "positive integer" check, so it must either work or raise EsmscaleError,
    # not crash with a TypeError inside numpy's reshape
    try:
        out = upsample_bilinear(np.ones((3, 3)), 2.0)
    except EsmscaleError:
        return
    assert out.shape == (6, 6)


def test_bad_rank():
    with pytest.raises(EsmscaleError, match=r"\(\.\.\., h, w\)"):
        upsample_bilinear(np.ones(5), 2)


# --------------------------------------------------------------------------- coarsen_block
def test_coarsen_block_hand_example() -> None:
    field = np.array(
        [
            [1.0, 2.0, np.nan, np.nan],
            [3.0, np.nan, np.nan, np.nan],
            [0.0, 0.0, 5.0, 7.0],
            [0.0, 4.0, 9.0, 11.0],
        ]
    )
    expected = np.array([[2.0, np.nan], [1.0, 8.0]])
    np.testing.assert_array_equal(coarsen_block(field, 2), expected)
    np.testing.assert_allclose(coarsen_block(field, 4), [[42.0 / 11.0]])
    stacked = coarsen_block(np.stack([field, 2 * field]).astype(np.float32), 2)
    assert stacked.shape == (2, 2, 2) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[1], 2 * expected)
    assert coarsen_block(np.ones((4, 4), dtype=int), 2).dtype == np.float64


def test_coarsen_block_not_divisible() -> None:
    with pytest.raises(EsmscaleError, match=r"\(6, 7\).*factor 2.*crop or pad"):
        coarsen_block(np.zeros((3, 6, 7)), 2)


@settings(max_examples=20, deadline=None)
@given(
    factor=st.integers(1, 4),
    ny=st.integers(1, 4),
    nx=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_coarsen_block_preserves_mean(factor: int, ny: int, nx: int, seed: int) -> None:
    field = np.random.default_rng(seed).normal(size=(2, ny * factor, nx * factor))
    coarse = coarsen_block(field, factor)
    assert coarse.shape == (2, ny, nx)
    np.testing.assert_allclose(coarse.mean(axis=(-2, -1)), field.mean(axis=(-2, -1)))


def test_coarsen_block_is_the_inverse_of_upsampling_a_constant() -> None:
    field = np.full((2, 3, 5), 4.0, dtype=np.float32)
    np.testing.assert_array_equal(coarsen_block(upsample_bilinear(field, 3), 3), field)


def test_coarsen_block_old_import_path_works() -> None:
    from esmscale.datasets import coarsen_block as old
    from esmscale.datasets.synthetic import coarsen_block as older

    assert old is coarsen_block and older is coarsen_block
