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

        Parameters
        ----------
        model
            A model name from ``esmscale models`` (optionally pinned, ``NAME@sha256:HEX``), a
            folder written by ``save_pretrained``, or a loaded model; default
            ``"synthetic-pr-4x"``.
        method
            A method of :mod:`esmscale.downscaling.methods`: ``"cm"``, ``"cm-multistep"``,
            ``"diffusion-bridge"``, ``"bilinear"``, ``"conservative"``, ``"qdm-bilinear"``.
        **kwargs
            The options of :func:`esmscale.downscaling.pipeline.downscale`: ``members``,
            ``seed``, ``t_star``, ``target``, ``bias_correction`` (``"qdm"`` or
            ``"qdm-mean"``), ``reference``, ``historical``, ...

        Returns
        -------
        xarray.Dataset or xarray.DataArray
            Like the input, on the fine grid with a ``member`` dimension; lazy (Dask) when the
            input is chunked. Units are the input's.

        Examples
        --------
        >>> import esmscale
        >>> from esmscale.datasets import synthetic_esm, synthetic_precip
        >>> esm = synthetic_esm(synthetic_precip(32, 32, 2, seed=0))
        >>> out = esm.esm.downscale("synthetic-pr-4x", members=2, seed=0)
        >>> dict(out["pr"].sizes), out["pr"].attrs["units"]
        ({'member': 2, 'time': 2, 'lat': 32, 'lon': 32}, 'mm day-1')
        >>> smooth = esm.pr.esm.downscale(method="bilinear", target=out)  # a baseline
        >>> smooth.sizes["lat"], smooth.sizes["lon"]
        (32, 32)
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

        Parameters
        ----------
        obs
            High-resolution observations of the variable (the model's training data or the
            like).
        model
            The model (a name, a folder or a loaded model).
        variable
            The variable, when the objects are Datasets with several.
        **kwargs
            The options of :func:`esmscale.downscaling.calibration.calibrate_esm` (the function
            ``esmscale calibrate`` runs too): ``held_out``, ``t_grid``, ``members``, ``check``,
            ``progress``, ...

        Returns
        -------
        Calibration
            The chosen ``t_star``, the rule that chose it (``method``) and the evidence: the
            spectral rule's value and the perfect-model search's scores per t (see
            :doc:`/choosing_t_star`).

        Examples
        --------
        >>> from esmscale.datasets import synthetic_esm, synthetic_precip
        >>> obs = synthetic_precip(32, 32, 4, seed=0)
        >>> cal = synthetic_esm(obs).esm.calibrate(obs, "synthetic-pr-4x", held_out=obs,
        ...                                        t_grid=[0.1, 0.3], members=2)
        >>> cal.t_star in (0.1, 0.3), cal.method
        (True, 'perfect-model CRPS')
        """
        from esmscale.downscaling.calibration import calibrate_esm

        return calibrate_esm(self._obj, obs, model, variable=variable, **kwargs)

    def psd(self, variable: str | None = None) -> xr.DataArray:
        """Time-mean radially averaged PSD against wavenumber in cycles per degree.

        NaN cells are masked. The spectrum is :func:`esmscale.metrics.radial_psd` (power per
        unit area of wavenumber space), so the PSDs of a coarse ESM and of fine observations
        of one region agree at the scales both grids resolve.

        Parameters
        ----------
        variable
            The variable, when the object is a Dataset with several.

        Returns
        -------
        xarray.DataArray
            ``psd_NAME`` along the wavenumber.

        Examples
        --------
        >>> from esmscale.datasets import synthetic_esm, synthetic_precip
        >>> obs = synthetic_precip(32, 32, 4, seed=0)
        >>> fine, coarse = obs.esm.psd(), synthetic_esm(obs).esm.psd()
        >>> fine.name, fine.ndim, coarse.sizes[coarse.dims[0]] < fine.sizes[fine.dims[0]]
        ('psd_pr', 1, True)
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
        """Lazy forecast from each init time.

        Parameters
        ----------
        model
            A forecaster (a trained network, a baseline from
            :func:`esmscale.forecast.fit`) or the folder of a saved one.
        lead
            Steps to forecast (default: the model's ``t_out``, else 1).
        init
            Init times (a time, a list or a slice); default: every time with enough history.
        variable
            The variable, when the object is a Dataset with several.
        **kwargs
            The other options of :func:`esmscale.forecast.forecast` (``chunk_size``,
            ``check``, ``device``, ``precision``).

        Returns
        -------
        xarray.DataArray
            Dask-backed, dims ``(init_time, lead_time, ...)``.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from esmscale.forecast import fit
        >>> da = xr.DataArray(np.zeros((5, 4, 4), "float32"), dims=("time", "y", "x"),
        ...                   coords={"time": np.arange(5.0)})
        >>> da.esm.forecast(fit("persistence", da), lead=2).shape
        (5, 2, 4, 4)
        """
        from esmscale.forecast import forecast

        return forecast(self._obj, model, lead=lead, init=init, variable=variable, **kwargs)

    def train_forecaster(self, config: Any = None, **kwargs: Any) -> Any:
        """Train a PastNet, SimVP or FNO forecaster on this data.

        Parameters
        ----------
        config
            A :class:`esmscale.forecast.ForecastConfig` (default: its defaults, PastNet).
        **kwargs
            The other options of :func:`esmscale.forecast.train` (``progress``, ...).

        Returns
        -------
        NeuralForecaster
            The trained forecaster, for :meth:`forecast`.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from esmscale.forecast import ForecastConfig
        >>> da = xr.DataArray(np.random.default_rng(0).random((30, 8, 8), "float32"),
        ...                   dims=("time", "y", "x"))
        >>> cfg = ForecastConfig(model="fno", t_in=2, t_out=1, steps=3, eval_every=2)
        >>> model = da.esm.train_forecaster(cfg, progress=False)
        >>> da.esm.forecast(model, lead=1).sizes["lead_time"]
        1
        """
        from esmscale.forecast import train

        return train(self._obj, config, **kwargs)


xr.register_dataset_accessor("esm")(EsmAccessor)
xr.register_dataarray_accessor("esm")(EsmAccessor)
