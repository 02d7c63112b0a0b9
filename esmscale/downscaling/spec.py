"""What one block of downscaling needs, in one frozen object: :class:`BlockSpec`.

Every caller of the tile kernel (:func:`esmscale.downscaling.kernel.run_block`) builds one: the
Dask graph of :func:`esmscale.downscale` (one spec shared by all block tasks), the plain-array
API, every t* search of the calibration and the benchmarks. What differs between blocks (the
output region, the member, the time indices) is passed beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from esmscale.devices import PRECISIONS
from esmscale.downscaling.tiling import Sampling, TileGrid
from esmscale.errors import EsmscaleError
from esmscale.io.model_cache import ModelRef
from esmscale.models.consistency import ConsistencyModel
from esmscale.models.sampler import DEFAULT_BATCH, SAMPLERS
from esmscale.models.transforms import DataTransform

__all__ = ["BlockSpec"]


@dataclass(frozen=True)
class BlockSpec:
    """The settings a block of output needs, fixed for a whole run.

    Parameters
    ----------
    model
        A :class:`~esmscale.io.model_cache.ModelRef` (small and picklable: what Dask tasks
        carry; the worker loads the checkpoint once per process) or, in-process, the model.
    grid
        The tiling of the whole fine grid (tiles, halo, dateline wrap); fixes the noise.
    t_star
        Noise level in the network's space.
    seed
        Noise seed; member ``m`` of seed ``s`` is reproducible on its own.
    steps
        Network calls (consistency samplers) or Euler-Maruyama steps (bridge) per field.
    sampler
        A name in :data:`esmscale.models.sampler.SAMPLERS`.
    transform
        The model's data transform (model units <-> network space).
    threads
        torch intra-op threads while the block runs (CPU results are bitwise reproducible for
        a fixed value); None keeps the process's setting.
    batch_size
        Fixed network batch size (results do not depend on which fields share a batch).
    device
        Where the network runs: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"``
        (:func:`esmscale.devices.resolve_device`), resolved where the block runs (a Dask
        worker with its own GPU). Noise is drawn on the host, so a member is the same field on
        any device up to the device's rounding.
    precision
        ``"fp32"``, ``"bf16"`` or ``"fp16"``: autocast around the network calls.
    restore
        Gaussian SD in cells of the member-wise large-scale restore
        (:mod:`esmscale.downscaling.restore`), or None for the network's output as it is.
    spread, spread_length
        Amplitude and correlation length (cells) of the smooth mean-one multiplicative
        perturbation given to each restored member (0: none); needs ``restore``.

    Examples
    --------
    >>> from esmscale.models import ConsistencyConfig, ConsistencyModel
    >>> m = ConsistencyModel(ConsistencyConfig(block_out_channels=(8, 16), patch_size=8))
    >>> spec = BlockSpec.for_model(m, TileGrid(32, 32, tile=16, halo=4), t_star=0.3)
    >>> spec.sampler, spec.steps, spec.grid.window
    ('consistency', 1, 24)
    """

    model: ModelRef | ConsistencyModel
    grid: TileGrid
    t_star: float
    transform: DataTransform
    seed: int = 0
    steps: int = 1
    sampler: str = "consistency"
    threads: int | None = 1
    batch_size: int = DEFAULT_BATCH
    device: str = "cpu"
    precision: str = "fp32"
    restore: float | None = None
    spread: float = 0.0
    spread_length: float = 4.0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EsmscaleError(
                f"precision={self.precision!r} is unknown; give one of {', '.join(PRECISIONS)}."
            )
        object.__setattr__(self, "device", str(self.device))
        if self.steps < 1:
            raise EsmscaleError(f"steps={self.steps} must be >= 1.")
        if self.threads is not None and self.threads < 1:
            raise EsmscaleError(f"threads={self.threads} must be >= 1 (or None).")
        SAMPLERS.get(self.sampler)  # an unknown name lists the known ones
        if self.restore is not None and not self.restore > 0:
            raise EsmscaleError(
                f"restore={self.restore} must be a positive length in target cells "
                "(the Gaussian SD of the large scales kept from the input);",
                python="pass e.g. restore=2.0, or None.",
                cli="give e.g. --restore 2, or leave it out.",
            )
        if self.spread < 0 or (self.spread > 0 and self.restore is None):
            raise EsmscaleError(
                f"spread={self.spread} must be >= 0 and needs the restore: it perturbs "
                "the large scales that the restore takes from the input;",
                python="pass restore=SIGMA with it (e.g. restore=2.0).",
                cli="add --restore SIGMA (e.g. --restore 2).",
            )
        if not self.spread_length > 0:
            raise EsmscaleError(
                f"spread_length={self.spread_length} must be > 0 (target cells);",
                python="pass e.g. spread_length=4.0.",
                cli="give e.g. --spread-length 4.",
            )

    @property
    def sampling(self) -> Sampling:
        """The noise level, seed, steps, batch size and sampler of this spec."""
        return Sampling(self.t_star, self.seed, self.steps, self.batch_size, self.sampler)

    @classmethod
    def for_model(
        cls, model: ModelRef | ConsistencyModel, grid: TileGrid, *, t_star: float, **kwargs: object
    ) -> BlockSpec:
        """A spec with the model's own transform; ``kwargs`` are the other fields."""
        from esmscale.io.model_cache import cached_model

        cm = model if isinstance(model, ConsistencyModel) else cached_model(model)
        SAMPLERS.get(str(kwargs.get("sampler", "consistency"))).check_model(cm)
        return cls(model, grid, float(t_star), cm.config.transform, **kwargs)  # type: ignore[arg-type]
