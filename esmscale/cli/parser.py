"""The ``esmscale`` argument parser: options, help texts with defaults and units, examples.

Imports nothing heavy (no torch, xarray or dask): ``esmscale --help`` must answer at once.
Each subcommand's ``run`` default names its function in :mod:`esmscale.cli.commands`.
"""

from __future__ import annotations

import argparse
import textwrap

from esmscale._version import __version__

__all__ = [
    "DOWNSCALING_METHODS",
    "FORECAST_BASELINES",
    "FORECAST_NETWORKS",
    "add_device_arguments",
    "build_parser",
]

#: Downscaling methods (``esmscale.downscaling.methods.available()``; a test keeps them equal,
#: listed here so that ``--help`` imports nothing heavy).
DOWNSCALING_METHODS = (
    "bilinear",
    "cm",
    "cm-multistep",
    "conservative",
    "diffusion-bridge",
    "noise-only",
    "qdm-bilinear",
)
#: Forecast methods that need no training (``esmscale.forecast.available_methods()``).
FORECAST_BASELINES = ("climatology", "optical_flow", "persistence")
#: Trainable forecasting networks (``esmscale.forecast.training``).
FORECAST_NETWORKS = ("fno", "pastnet", "simvp")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and appends ``(default: X)`` where the help lacks it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = action.default in (None, False, argparse.SUPPRESS) or not action.option_strings
        if quiet or "default" in text:
            return text
        value = (
            " ".join(map(str, action.default))
            if isinstance(action.default, list)
            else "%(default)s"
        )
        return f"{text} (default: {value})"


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    run: str,
    help_text: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help_text,
        description=textwrap.fill(description, 88),
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=_Formatter,
    )
    p.set_defaults(run=run)
    return p


_CHECK_HELP = (
    "physical check of the input fields: 'raise' (default) stops on negative precipitation "
    "(below -0.01 mm/day), temperatures outside 150..350 K, infinities or fill values that "
    "leaked through; 'warn' prints a warning and goes on; 'off' skips the check"
)


def _check(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", choices=["raise", "warn", "off"], default="raise", help=_CHECK_HELP)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--device`` and ``--precision`` to a command-line parser (esmscale's and visionkit's).

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> add_device_arguments(p)
    >>> vars(p.parse_args(["--precision", "bf16"]))
    {'device': 'cpu', 'precision': 'bf16'}
    """
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the network runs: cpu, cuda, cuda:N, mps or auto (the first accelerator "
        "present, else cpu); an absent device is an error listing the devices present",
    )
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="autocast precision of the network (fp16 is refused on cpu; use bf16 there)",
    )


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = _sub(
        sub,
        "demo",
        "_cmd_demo",
        "downscale a synthetic ESM sample with the shipped model",
        "Generate a small synthetic 'truth' and its coarse, biased ESM counterpart, correct the "
        "ESM's bias with QDM (trained on the synthetic world's own earlier year), downscale it "
        "with the shipped model into an ensemble and write the result (Zarr) and a figure (PNG: "
        "input, truth, members, ensemble SD, PSD) into one folder, then print wet-day frequency "
        "and q99 against the truth. Needs no data; takes seconds on a laptop CPU.",
        """
  esmscale demo
  esmscale demo --output demo --members 8 --days 16
  esmscale demo --model runs/pr/model --seed 1
""",
    )
    d.add_argument("--output", default="esmscale-demo", help="output folder (Zarr store + PNG)")
    d.add_argument("--members", type=int, default=4, help="ensemble members")
    d.add_argument("--days", type=int, default=8, help="number of daily fields, in days")
    d.add_argument("--seed", type=int, default=0, help="seed of the data and the noise")
    d.add_argument("--model", default="synthetic-pr-4x", help="model name or checkpoint folder")
    d.add_argument(
        "--no-bias-correction",
        dest="bias_correction",
        action="store_false",
        help="downscale the biased synthetic ESM as it is (default: QDM trained on the "
        "synthetic world's truth over the 365 days before the days shown)",
    )


def _synth(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = _sub(
        sub,
        "synth",
        "_cmd_synth",
        "write a synthetic high-resolution dataset (and its coarse ESM counterpart)",
        "Write a synthetic daily field (precipitation in mm/day or temperature in K) on a "
        "regular lat/lon grid to NetCDF; with --esm-factor also its coarse, biased ESM "
        "counterpart, written beside it as NAME_coarse.nc.",
        """
  esmscale synth obs.nc --ny 64 --nx 64 --days 365
  esmscale synth esm.nc --seed 1 --esm-factor 4
  esmscale synth tas.nc --variable tas --days 100
""",
    )
    s.add_argument("output", help="NetCDF file to write")
    s.add_argument("--variable", choices=["pr", "tas"], default="pr", help="pr (mm/day) or tas (K)")
    s.add_argument("--ny", type=int, default=64, help="grid size in latitude, in cells")
    s.add_argument("--nx", type=int, default=64, help="grid size in longitude, in cells")
    s.add_argument("--days", type=int, default=365, help="number of daily fields, in days")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument(
        "--esm-factor",
        type=int,
        default=0,
        help="if > 0, also write the coarse biased ESM counterpart at this factor to "
        "NAME_coarse.nc beside OUTPUT (0: off)",
    )


def _train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = _sub(
        sub,
        "train",
        "_cmd_train",
        "train a consistency model on high-resolution observations",
        "Train a consistency model on high-resolution observations (precipitation gets a log "
        "transform, temperature a standardisation). OUTPUT/training_state is saved every "
        "--checkpoint-every steps (continue with --resume), the model goes to OUTPUT/model.",
        """
  esmscale train obs.nc --output runs/pr --steps 8000
  esmscale train obs.nc --output runs/pr --steps 8000 --resume
  esmscale train 'obs/*.nc' --output runs/tas --variable tas --overwrite
""",
    )
    t.add_argument("obs", help="NetCDF file, Zarr store or glob of observations (time, y, x)")
    t.add_argument("--output", required=True, help="output folder (model/ and training_state/)")
    t.add_argument(
        "--variable", default=None, help="variable name if the file has several (default: the one)"
    )
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    t.add_argument("--batch-size", type=int, default=16, help="patches per step")
    t.add_argument(
        "--patch-size",
        type=int,
        default=32,
        help="training patch side, in grid cells (a multiple of 2^(levels-1))",
    )
    t.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    t.add_argument("--seed", type=int, default=0, help="seed of sampling and initialisation")
    t.add_argument(
        "--channels",
        type=int,
        nargs="+",
        default=[32, 32, 64, 64],
        help="UNet channels per level (block_out_channels)",
    )
    t.add_argument("--layers-per-block", type=int, default=1, help="UNet layers per level")
    t.add_argument(
        "--n-end", type=int, default=80, help="final number of noise-level discretisation steps"
    )
    t.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay per step")
    t.add_argument(
        "--factor", type=int, default=4, help="downscaling factor to record in the model"
    )
    t.add_argument("--name", default="esmscale-cm", help="model name")
    t.add_argument(
        "--checkpoint-every", type=int, default=500, help="save the training state every N steps"
    )
    t.add_argument("--resume", action="store_true", help="continue from OUTPUT/training_state")
    t.add_argument(
        "--overwrite", action="store_true", help="replace a run already in OUTPUT (default: refuse)"
    )
    _quiet(t)
    _check(t)
    add_device_arguments(t)


def _downscale(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = _sub(
        sub,
        "downscale",
        "_cmd_downscale",
        "downscale coarse ESM data to a Zarr store",
        "Downscale coarse ESM fields into a high-resolution ensemble written to Zarr (template "
        "first, then chunks; --resume fills in missing chunks of an interrupted run). The output "
        "keeps the input's units.",
        """
  esmscale downscale esm.nc --output out.zarr --members 4
  esmscale downscale esm.nc --output out.zarr --members 4 --resume
  esmscale downscale esm.nc --model runs/pr/model --target obs.nc --bias-correction qdm \\
      --reference obs.nc --historical esm_hist.nc --output out.zarr --workers 4
""",
    )
    w.add_argument(
        "input",
        help="NetCDF file, Zarr store, glob of NetCDF files, or a catalog entry "
        "CATALOG.json?facet=value&... (also for --target, --reference, --historical)",
    )
    w.add_argument(
        "--catalog-root",
        default=None,
        help="folder that a catalog's relative asset paths are resolved against (default: "
        "$ESMSCALE_CATALOG_ROOT, else the catalog's folder)",
    )
    w.add_argument("--model", default="synthetic-pr-4x", help="model name or checkpoint folder")
    w.add_argument(
        "--method",
        default="cm",
        help="downscaling method, a name in esmscale.downscaling.methods: "
        + ", ".join(DOWNSCALING_METHODS)
        + " (an unknown name lists the registered ones)",
    )
    w.add_argument(
        "--output",
        required=True,
        help="output Zarr store: a folder (OUT.zarr) or an fsspec URL (s3://BUCKET/OUT.zarr needs "
        "s3fs; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, another "
        "S3 server from AWS_ENDPOINT_URL)",
    )
    w.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option of the --output URL's filesystem, repeatable (e.g. "
        "endpoint_url=http://127.0.0.1:9000, anon=true); keep secrets in the environment",
    )
    w.add_argument(
        "--variable", default=None, help="variable name if the input has several (default: the one)"
    )
    w.add_argument("--members", type=int, default=1, help="ensemble members")
    w.add_argument("--seed", type=int, default=0, help="noise seed")
    w.add_argument(
        "--t-star",
        default="auto",
        help="noise level t* (dimensionless, in the model's normalised space) or 'auto' for the "
        "model's calibrated value",
    )
    w.add_argument(
        "--steps",
        type=int,
        default=None,
        help="network calls (or bridge steps) per member (default: the method's own: 1 for cm, "
        "4 for cm-multistep, 500 for diffusion-bridge)",
    )
    w.add_argument(
        "--target",
        default=None,
        help="file whose lat/lon grid is the output grid (default: the input grid refined by "
        "the model's factor)",
    )
    w.add_argument(
        "--restore",
        type=float,
        default=None,
        metavar="SIGMA",
        help="keep the (bias-corrected) input's large scales in every member: the output's "
        "Gaussian low-pass of SD SIGMA target cells is set to the input's (brings the "
        "climatology map and intense days back toward the input's; what it gains and costs on "
        "real data: docs/benchmarks.md; default: off)",
    )
    w.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="with --restore: amplitude of a smooth mean-one multiplicative perturbation per "
        "member, the large-scale uncertainty the restore takes away (calibrate it with "
        "esmscale.downscaling.calibration.calibrate_spread; default: 0)",
    )
    w.add_argument(
        "--spread-length",
        type=float,
        default=4.0,
        help="correlation length of the --spread perturbation, in target cells (default: 4)",
    )
    w.add_argument(
        "--bias-correction",
        choices=["qdm", "qdm-mean"],
        default=None,
        help="quantile delta mapping before the model (needs --reference, --historical); "
        "qdm-mean also keeps the model's change in each cell's mean (default: none)",
    )
    w.add_argument("--reference", default=None, help="observations on the target grid (for QDM)")
    w.add_argument("--historical", default=None, help="the ESM's historical run (for QDM)")
    w.add_argument(
        "--chunks",
        default=None,
        help="chunk sizes in grid cells / time steps, e.g. time=30 or time=30,lat=128,lon=128 "
        "(default: time=30, whole grid)",
    )
    w.add_argument(
        "--workers",
        type=int,
        default=0,
        help="start a dask.distributed LocalCluster of N worker processes, one thread each "
        "(0: dask's threads)",
    )
    w.add_argument(
        "--scheduler",
        default=None,
        help="address of a running dask scheduler, e.g. tcp://HOST:8786 (default: none)",
    )
    w.add_argument(
        "--scheduler-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for --scheduler to answer (default: 30)",
    )
    w.add_argument(
        "--memory-limit",
        default="auto",
        help="memory limit per --workers worker, e.g. 2GiB (default: auto, the machine's "
        "memory shared out); a limit below what one tile task needs is refused",
    )
    w.add_argument(
        "--worker-resources",
        default=None,
        metavar="NAME=N[,NAME=N]",
        help="Dask worker resources each tile task takes, e.g. GPU=1: the network runs only on "
        "workers that declare them (dask worker --resources GPU=1, dask-cuda's "
        "LocalCUDACluster); with --workers N the local workers declare them (default: none)",
    )
    w.add_argument("--resume", action="store_true", help="compute only the missing chunks")
    w.add_argument(
        "--overwrite", action="store_true", help="replace an existing store (default: refuse)"
    )
    _quiet(w)
    _check(w)
    add_device_arguments(w)


def _calibrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = _sub(
        sub,
        "calibrate",
        "_cmd_calibrate",
        "choose t* (spectral rule and perfect-model search)",
        "Choose the noise level t* of a model for an ESM: the spectral crossing rule, and with "
        "held-out observations a perfect-model CRPS search over t (a progress bar per t on "
        "stderr; --quiet hides it). Prints the choice; with --output saves the model with it.",
        """
  esmscale calibrate runs/pr/model --obs obs.nc --held-out held.nc
  esmscale calibrate runs/pr/model --obs obs.nc --held-out held.nc --esm esm.nc --output cal
""",
    )
    c.add_argument("model", help="model name or checkpoint folder")
    c.add_argument("--obs", required=True, help="training-period observations")
    c.add_argument("--held-out", required=True, help="held-out observations (perfect model)")
    c.add_argument(
        "--esm",
        default=None,
        help="coarse ESM file for the spectral rule (default: held-out obs coarsened)",
    )
    c.add_argument(
        "--variable",
        default=None,
        help="variable name if the files have several (default: the one)",
    )
    c.add_argument("--members", type=int, default=4, help="ensemble members per t")
    c.add_argument("--max-fields", type=int, default=32, help="held-out fields used in the search")
    c.add_argument(
        "--min-corr",
        type=float,
        default=0.95,
        help="minimum pooled correlation with the input for a t to be eligible (0-1)",
    )
    c.add_argument(
        "--output", default=None, help="save the model with the chosen t* here (default: not saved)"
    )
    _quiet(c)
    _check(c)
    add_device_arguments(c)


def _evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = _sub(
        sub,
        "evaluate",
        "_cmd_evaluate",
        "score downscaled results against observations; write report.md and figures",
        "Score downscaled results against observations on their grid (CRPS, quantiles, "
        "wet-day frequency, spectra, consistency with the coarse input, and for daily "
        "precipitation the ETCCDI indices and the fractions skill score) and write report.md, "
        "metrics.json and figures into a folder.",
        """
  esmscale evaluate obs.nc --result cm=out.zarr --output report
  esmscale evaluate obs.nc --result cm=out.zarr --result bilinear=bil.zarr --coarse esm.nc \\
      --output report --no-coastlines
""",
    )
    e.add_argument("obs", help="observations on the results' grid (NetCDF, Zarr or glob)")
    e.add_argument(
        "--result",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a result to score (repeat for several), e.g. --result cm=downscaled.zarr",
    )
    e.add_argument(
        "--coarse", default=None, help="the coarse input that was downscaled (default: none)"
    )
    e.add_argument("--output", required=True, help="output folder (report.md, PNGs, JSON)")
    e.add_argument(
        "--no-indices",
        action="store_true",
        help="skip the ETCCDI climate indices (xclim) and the fractions skill score, which "
        "daily precipitation gets by default",
    )
    e.add_argument(
        "--variable",
        default=None,
        help="variable name if the files have several (default: the one)",
    )
    e.add_argument(
        "--factor", type=int, default=None, help="downscaling factor (default: from the grids)"
    )
    e.add_argument(
        "--k-star",
        type=float,
        default=None,
        help="PSD error over wavenumbers k >= K, in cycles per grid cell (default: all)",
    )
    e.add_argument(
        "--crps-vs-t",
        default=None,
        help="JSON {t: CRPS}, or a calibrated model's config.json (t_grid, crps) (default: none)",
    )
    e.add_argument(
        "--no-coastlines",
        action="store_true",
        help="draw the maps without coastlines (needs no Cartopy; default: with coastlines)",
    )
    e.add_argument(
        "--coastline-data",
        default=None,
        metavar="DIR",
        help="Cartopy data folder with GSHHS coastlines (default: $CARTOPY_DATA_DIR, then "
        "/usr/share/cartopy/data from Debian's python-cartopy-data)",
    )
    e.add_argument(
        "--download-coastlines",
        action="store_true",
        help="let Cartopy download Natural Earth coastlines if no offline data is found "
        "(default: off; also ESMSCALE_DOWNLOAD_COASTLINES=1)",
    )
    _quiet(e)
    _check(e)


def _forecast_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ft = _sub(
        sub,
        "forecast-train",
        "_cmd_forecast_train",
        "train a PastNet/SimVP/FNO forecaster",
        "Train a forecasting network on a history of fields: --t-in past steps predict "
        "--t-out future steps. OUTPUT/training_state is saved every --checkpoint-every steps "
        "(continue with --resume); the best model on the validation windows goes to "
        "OUTPUT/model.",
        """
  esmscale synth tas.nc --variable tas --days 400
  esmscale forecast-train tas.nc --output runs/fc --model pastnet --steps 500
  esmscale forecast-train tas.nc --output runs/fno --model fno --t-in 4 --t-out 2
""",
    )
    ft.add_argument(
        "data", help="NetCDF/Zarr with a (time, y, x) or (time, channel, y, x) variable"
    )
    ft.add_argument("--output", required=True, help="output folder (model/ and training_state/)")
    ft.add_argument(
        "--model", choices=list(FORECAST_NETWORKS), default="pastnet", help="network to train"
    )
    ft.add_argument(
        "--variable", default=None, help="variable name if the file has several (default: the one)"
    )
    ft.add_argument("--t-in", type=int, default=10, help="input frames, in time steps")
    ft.add_argument("--t-out", type=int, default=10, help="predicted frames, in time steps")
    ft.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    ft.add_argument("--batch-size", type=int, default=16, help="windows per step")
    ft.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    ft.add_argument("--seed", type=int, default=0, help="seed of sampling and initialisation")
    ft.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="fraction of the time axis (the end) kept for validation, in [0, 1)",
    )
    ft.add_argument(
        "--patience",
        type=int,
        default=5,
        help="stop after this many validations (every 100 steps) without improvement",
    )
    ft.add_argument(
        "--checkpoint-every", type=int, default=500, help="save the training state every N steps"
    )
    ft.add_argument("--resume", action="store_true", help="continue from OUTPUT/training_state")
    ft.add_argument(
        "--overwrite", action="store_true", help="replace a run already in OUTPUT (default: refuse)"
    )
    _quiet(ft)
    _check(ft)
    add_device_arguments(ft)


def _forecast(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fc = _sub(
        sub,
        "forecast",
        "_cmd_forecast",
        "forecast from every init time to a NetCDF file",
        "Forecast from every init time of a history with a trained network (its checkpoint "
        "folder) or a baseline that needs no training, and write (init_time, lead_time, y, x) "
        "to NetCDF.",
        """
  esmscale forecast tas.nc --model runs/fc/model --output fc.nc
  esmscale forecast tas.nc --model persistence --lead 5 --output persistence.nc
  esmscale forecast tas.nc --model optical_flow --lead 5 --output flow.nc
""",
    )
    fc.add_argument("data", help="NetCDF/Zarr history")
    fc.add_argument(
        "--model",
        required=True,
        metavar="FOLDER|NAME",
        help="checkpoint folder written by forecast-train, or a baseline: "
        + ", ".join(FORECAST_BASELINES)
        + " (optical_flow needs the forecast extra)",
    )
    fc.add_argument("--output", required=True, help="NetCDF file to write")
    fc.add_argument(
        "--variable", default=None, help="variable name if the file has several (default: the one)"
    )
    fc.add_argument(
        "--lead", type=int, default=None, help="lead in time steps (default: the model's t_out)"
    )
    fc.add_argument("--chunk-size", type=int, default=32, help="init times per Dask task")
    _check(fc)
    add_device_arguments(fc)


def _models(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = _sub(
        sub,
        "models",
        "_cmd_models",
        "list the available models (shipped and the user's own folders)",
        "List the models that --model accepts: the ones shipped in the package (its "
        "catalog.json) and those in the user's model folders ($ESMSCALE_MODELS, folders "
        "separated by ':', or --folder), with variable, units, grid spacing, factor, t*, size, "
        "sha256 and training data. Pin a model as NAME@sha256:HEX to refuse any other weights.",
        """
  esmscale models
  esmscale models --folder ~/esm-models --json
""",
    )
    m.add_argument(
        "--folder",
        action="append",
        default=None,
        metavar="DIR",
        help="a folder of your own models (each subfolder written by save_pretrained or "
        "esmscale train's model/); repeat for several (default: only $ESMSCALE_MODELS)",
    )
    m.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _catalog(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = _sub(
        sub,
        "catalog",
        "_cmd_catalog",
        "build an intake-esm catalog from a folder of NetCDF/Zarr files",
        "Scan a folder for NetCDF and Zarr files, read their CMIP facets from the attributes "
        "(falling back to the CMIP6, CMIP5 and CORDEX file-name conventions, then to the "
        "free-text source/title attributes, which also name observation and reanalysis "
        "products such as E-OBS or ERA5) and write an intake-esm catalog (JSON + CSV). Files "
        "that cannot be read or classified are listed with the reason; the scan goes on.",
        """
  esmscale catalog build data -o data/catalog.json
  esmscale catalog build /archive/cmip6 -o cmip6.json
""",
    )
    c.add_argument(
        "action", choices=["build"], metavar="action", help="what to do (build: scan and write)"
    )
    c.add_argument("folder", help="data folder, scanned recursively")
    c.add_argument("-o", "--output", required=True, help="catalog JSON to write (CSV beside it)")


def build_parser() -> argparse.ArgumentParser:
    """The ``esmscale`` argument parser (imports nothing heavy).

    Returns
    -------
    argparse.ArgumentParser
        With one subparser per command; ``run`` names the command's function in
        :mod:`esmscale.cli.commands`.

    Examples
    --------
    >>> args = build_parser().parse_args(["catalog", "build", "data", "-o", "cat.json"])
    >>> args.command, args.output
    ('catalog', 'cat.json')
    """
    p = argparse.ArgumentParser(
        prog="esmscale",
        description=(
            "Zero-shot probabilistic downscaling of Earth system model output with consistency "
            "models."
        ),
        epilog="examples:\n  esmscale demo\n  esmscale downscale esm.nc --output out.zarr "
        "--members 4\n  esmscale train --help",
        formatter_class=_Formatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _demo,
        _synth,
        _train,
        _downscale,
        _calibrate,
        _evaluate,
        _forecast_train,
        _forecast,
        _models,
        _catalog,
    ):
        add(sub)
    return p
