"""The ``.esm`` accessor on xarray objects: a thin facade over plain functions.

>>> import esmscale  # registers the accessor
>>> # ds.esm.downscale("synthetic-pr-4x", members=4)   -> esmscale.downscaling.pipeline.downscale
>>> # ds.esm.calibrate(obs, model)    -> esmscale.downscaling.calibration.calibrate_esm
>>> # ds.esm.psd()                                     -> esmscale.metrics.radial_psd
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xarray as xr

if TYPE_CHECKING:
    from esmscale.downscaling.calibration import Calibration
    from esmscale.models.consistency import ConsistencyModel

# The accessor is registered when xarray is imported (esmscale._lazy), so this module imports
# only xarray and numpy at the top; the heavy modules (torch) load when a method is called.

__all__ = ["EsmAccessor"]


class EsmAccessor:
    """``obj.esm``: downscaling, calibration and spectra for Datasets and DataArrays.

    A thin facade: each method calls a plain function that also works without the accessor
    (:func:`esmscale.downscale`, :func:`esmscale.calibrate_noise_level`, ...).

    Examples
    --------
    >>> import esmscale
    >>> from esmscale.datasets import synthetic_esm, synthetic_precip
    >>> esm = synthetic_esm(synthetic_precip(32, 32, 2, seed=0)).chunk(time=1)
    >>> out = esm.esm.downscale("synthetic-pr-4x", members=2, seed=0)  # lazy
    >>> type(out["pr"].data).__name__, dict(out["pr"].sizes)
    ('Array', {'member': 2, 'time': 2, 'lat': 32, 'lon': 32})
    >>> out["pr"].esm.downscale  # doctest: +ELLIPSIS
    <bound method EsmAccessor.downscale of <esmscale.accessor.EsmAccessor object at ...>>
    """

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def downscale(
        self, model: ConsistencyModel | str | None = None, *, method: str = "cm", **kwargs: Any
    ) -> xr.DataArray | xr.Dataset:
        """Downscale into an ensemble with ``method`` (default the consistency model).

        See :func:`esmscale.downscaling.pipeline.downscale` for the options and
        :mod:`esmscale.downscaling.methods` for the methods (``"cm"``, ``"cm-multistep"``,
        ``"diffusion-bridge"``, ``"bilinear"``, ``"conservative"``, ``"qdm-bilinear"``).
        """
        from esmscale.downscaling import methods

        return methods.get(method)(self._obj, model, **kwargs)

    def calibrate(
        self,
        obs: xr.Dataset | xr.DataArray,
        model: ConsistencyModel | str,
        *,
        variable: str | None = None,
        **kwargs: Any,
    ) -> Calibration:
        """Choose t* for this ESM against observations ``obs``.

        See :func:`esmscale.downscaling.calibration.calibrate_esm` (the function the CLI's
        ``esmscale calibrate`` runs too); ``kwargs`` (``held_out``, ``check``, ``progress``,
        ``t_grid``, ``members``, ...) go there.
        """
        from esmscale.downscaling.calibration import calibrate_esm

        return calibrate_esm(self._obj, obs, model, variable=variable, **kwargs)

    def psd(self, variable: str | None = None) -> xr.DataArray:
        """Time-mean radially averaged PSD against wavenumber in cycles per degree.

        NaN cells are masked. The spectrum is :func:`esmscale.metrics.radial_psd` (power per
        unit area of wavenumber space), so the PSDs of a coarse ESM and of fine observations
        of one region agree at the scales both grids resolve.
        """
        from esmscale.metrics import radial_psd
        from esmscale.prepare.coords import find_latlon
        from esmscale.prepare.inputs import select_variable

        da = select_variable(self._obj, variable)
        lat, lon = find_latlon(da)
        p = radial_psd(da.transpose(..., lat, lon))
        return p.rename(f"psd_{da.name}").assign_attrs(
            long_name=f"radially averaged PSD of {da.name}"
        )

    def forecast(
        self,
        model: Any,
        *,
        lead: int | None = None,
        init: Any = None,
        variable: str | None = None,
        **kwargs: Any,
    ) -> xr.DataArray:
        """Lazy forecast from each init time; see :func:`esmscale.forecast.forecast`."""
        from esmscale.forecast import forecast

        return forecast(self._obj, model, lead=lead, init=init, variable=variable, **kwargs)

    def train_forecaster(self, config: Any = None, **kwargs: Any) -> Any:
        """Train PastNet/SimVP/FNO on this data; see :func:`esmscale.forecast.train`."""
        from esmscale.forecast import train

        return train(self._obj, config, **kwargs)


xr.register_dataset_accessor("esm")(EsmAccessor)
xr.register_dataarray_accessor("esm")(EsmAccessor)
