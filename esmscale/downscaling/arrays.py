"""The plain-array API: downscale numpy fields on regular grids refined by an integer factor.

:func:`downscale_array` interpolates coarse fields bilinearly, then runs the same tile kernel
as the xarray pipeline (:func:`esmscale.downscaling.kernel.run_block`, over the whole domain);
:func:`denoise_fine` and :func:`noise_only` start from fields already on the fine grid.
"""

from __future__ import annotations

import os

import numpy as np

from esmscale.devices import resolve_device
from esmscale.downscaling.kernel import sample_fine
from esmscale.downscaling.plan import plan_grid
from esmscale.downscaling.spec import BlockSpec
from esmscale.errors import EsmscaleError
from esmscale.models.consistency import ConsistencyModel
from esmscale.prepare.clipping import clip_negative
from esmscale.prepare.interp import upsample_bilinear
from esmscale.prepare.physics import check_values, is_nonnegative, rule_for

__all__ = ["denoise_fine", "downscale_array", "fine_spec", "noise_only", "resolve_t_star"]


def resolve_t_star(model: ConsistencyModel, t_star: float | str) -> float:
    """Return a numeric noise level; ``"auto"`` uses the model's calibrated ``t_star``.

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), t_star=0.3))
    >>> resolve_t_star(m, "auto"), resolve_t_star(m, 0.1)
    (0.3, 0.1)
    >>> resolve_t_star(m, "best")
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: t_star='best' is neither a number nor 'auto'; ...
    """
    if isinstance(t_star, str):
        if t_star != "auto":
            raise EsmscaleError(
                f"t_star={t_star!r} is neither a number nor 'auto';",
                python="give t_star=<float> or t_star='auto'.",
                cli="give --t-star VALUE or --t-star auto.",
            )
        if model.config.t_star is None:
            raise EsmscaleError(
                f"model {model.config.name!r} stores no calibrated t_star;",
                python="pass t_star=<float> or calibrate it with "
                "esmscale.calibrate_noise_level(...) and save the model.",
                cli="give --t-star VALUE or calibrate the model with `esmscale calibrate ... "
                "--output DIR` and use that DIR as --model.",
            )
        return float(model.config.t_star)
    return float(t_star)


def fine_spec(
    model: ConsistencyModel,
    shape: tuple[int, int],
    *,
    t_star: float,
    seed: int = 0,
    steps: int = 1,
    sampler: str = "consistency",
    grid: dict[str, int | None] | None = None,
    threads: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> BlockSpec:
    """The :class:`BlockSpec` of a regional (non-wrapping) fine grid of ``shape``.

    ``grid`` may hold ``tile`` and ``halo`` (defaults as in :func:`esmscale.downscale`, so
    that both plan the same tiles and draw the same noise). ``device`` is checked here (an
    absent device is an error listing the devices present).

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> spec = fine_spec(m, (16, 24), t_star=0.2, seed=3)
    >>> spec.t_star, spec.seed, spec.sampler
    (0.2, 3, 'consistency')
    """
    resolve_device(device)
    opts = grid or {}
    g = plan_grid(*shape, model.config.multiple, tile=opts.get("tile"), halo=opts.get("halo"))
    return BlockSpec.for_model(
        model,
        g,
        t_star=t_star,
        seed=seed,
        steps=steps,
        sampler=sampler,
        threads=threads,
        device=device,
        precision=precision,
    )


def denoise_fine(
    model: ConsistencyModel,
    fine: np.ndarray,
    *,
    t_star: float,
    members: int = 1,
    seed: int = 0,
    steps: int = 1,
    time_index: np.ndarray | None = None,
    network: bool = True,
    device: str = "cpu",
    precision: str = "fp32",
) -> np.ndarray:
    """Denoise fields already on the fine grid (model units) into an ensemble.

    A thin wrapper over the tile kernel (:func:`esmscale.downscaling.kernel.sample_fine`)
    with the default tiles of :func:`esmscale.downscale` on a regional grid.

    Parameters
    ----------
    fine
        ``(time, H, W)`` interpolated fields in the model's training units; NaN cells stay NaN.
    time_index
        Global time index of each field (noise identity); defaults to ``arange(time)``.
    network
        If False, return the noise-only control (sampler ``"noise-only"``): the same noisy
        field mapped back without the network call.
    device, precision
        Where and in which precision the network runs (:mod:`esmscale.devices`).

    Returns
    -------
    numpy.ndarray
        ``(members, time, H, W)`` float32 in training units.

    Examples
    --------
    >>> import numpy as np
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> out = denoise_fine(m, np.zeros((3, 8, 8)), t_star=0.1, members=2)
    >>> out.shape, out.dtype
    ((2, 3, 8, 8), dtype('float32'))
    >>> again = denoise_fine(m, np.zeros((3, 8, 8)), t_star=0.1, members=2)
    >>> bool(np.array_equal(out, again))  # the noise is drawn from (seed, member, time, tile)
    True
    """
    fine = np.asarray(fine, dtype=np.float32)
    if fine.ndim != 3:
        raise EsmscaleError(f"expected (time, H, W) fields, got shape {fine.shape}.")
    sampler = "consistency" if network else "noise-only"
    spec = fine_spec(
        model,
        fine.shape[1:],
        t_star=t_star,
        seed=seed,
        steps=steps,
        sampler=sampler,
        device=device,
        precision=precision,
    )
    return sample_fine(spec, fine, members, time_index)


def downscale_array(
    model: ConsistencyModel | str | os.PathLike[str],
    coarse: np.ndarray,
    *,
    factor: int | None = None,
    t_star: float | str = "auto",
    members: int = 1,
    seed: int = 0,
    steps: int = 1,
    time_index: np.ndarray | None = None,
    check: str = "raise",
    tile: int | None = None,
    halo: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> np.ndarray:
    """Downscale coarse ``(time, h, w)`` fields by an integer factor into an ensemble.

    The coarse fields (in the model's training units) are interpolated bilinearly onto the grid
    ``factor`` times finer, noised to ``t_star`` in the model's space and denoised with
    ``steps`` network calls per member. ``model`` is a loaded model, a shipped model's name
    (``"synthetic-pr-4x"``) or a checkpoint path, as for :func:`esmscale.downscale`.
    ``check`` is the physical check of ``coarse`` (``"raise"``, ``"warn"`` or ``"off"``, see
    :mod:`esmscale.prepare.physics`), judged by the model's variable and units; outputs of
    non-negative variables are clipped at 0.

    The fine grid is cut into the same tiles as :func:`esmscale.downscale` (``tile``, ``halo``
    default to its plan, :func:`esmscale.downscaling.plan.plan_grid`) and every member runs
    through the same tile kernel with the same noise, so ``downscale_array`` and
    ``ds.esm.downscale`` give the same member for the same (seed, member, time index, tile)
    and the same interpolated input. ``threads`` fixes torch's threads while sampling (None:
    the process's setting). ``device`` (``"cpu"``,
    ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"auto"``) and ``precision`` (``"fp32"``,
    ``"bf16"``, ``"fp16"``) choose where and how the network runs (:mod:`esmscale.devices`);
    the noise is drawn on the host, so a member is the same field on any device up to the
    device's rounding, and the result is float32 on the host.

    Returns
    -------
    numpy.ndarray
        ``(members, time, h*factor, w*factor)`` float32.

    Examples
    --------
    >>> import numpy as np
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> downscale_array(m, np.ones((2, 4, 4)), factor=2, t_star=0.1, members=3).shape
    (3, 2, 8, 8)
    """
    from esmscale.pretrained import load_model

    if not isinstance(model, ConsistencyModel | str | os.PathLike):
        raise EsmscaleError(
            f"downscale_array(model, coarse): model is a {type(model).__name__}; give a "
            "ConsistencyModel, a shipped model name (esmscale.available_models()) or a "
            "checkpoint path first, then the coarse (time, y, x) array."
        )
    model = load_model(model)
    coarse = np.asarray(coarse, dtype=np.float32)
    if coarse.ndim == 2:
        coarse = coarse[None]
    if coarse.ndim != 3:
        raise EsmscaleError(f"coarse fields must be (time, y, x), got shape {coarse.shape}.")
    tr = model.config.transform
    attrs = {"units": tr.units}
    name = model.config.variable
    if tr.kind == "log" and rule_for(name, attrs) is None:
        attrs["standard_name"] = "lwe_precipitation_rate"  # a log transform means rates >= 0
    check_values(coarse, name=name, attrs=attrs, check=check, dims=("time", "y", "x"))
    f = model.config.factor if factor is None else factor
    fine = upsample_bilinear(coarse, f)
    spec = fine_spec(
        model,
        fine.shape[1:],
        t_star=resolve_t_star(model, t_star),
        seed=seed,
        steps=steps,
        grid={"tile": tile, "halo": halo},
        threads=threads,
        device=device,
        precision=precision,
    )
    out = sample_fine(spec, fine, members, time_index)
    return clip_negative(out)[0] if is_nonnegative(name, attrs) else out


def noise_only(
    model: ConsistencyModel, fine: np.ndarray, *, t_star: float, members: int = 1, seed: int = 0
) -> np.ndarray:
    """The noise-only control: interpolated field plus the same noise at ``t_star``, no network.

    Examples
    --------
    >>> import numpy as np
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> fine = np.zeros((1, 8, 8), dtype="float32")
    >>> control = noise_only(m, fine, t_star=0.5, members=2)
    >>> control.shape, bool(np.all(np.isfinite(control))), bool(np.any(control != 0))
    ((2, 1, 8, 8), True, True)
    >>> net = denoise_fine(m, fine, t_star=0.5, members=2)
    >>> bool(np.array_equal(control, net))  # same noise, but no network call
    False
    """
    return denoise_fine(model, fine, t_star=t_star, members=members, seed=seed, network=False)
