"""Command-line interface: ``esmscale <command>``. Parses arguments and calls the API only."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _cmd_demo(a: argparse.Namespace) -> None:
    from esmscale.demo import run_demo

    summary = run_demo(a.output, members=a.members, days=a.days, seed=a.seed, model=a.model)
    print(
        f"wrote {summary['zarr']} and {summary['png']} "
        f"({summary['members']} members x {summary['days']} days, t*={summary['t_star']:.3f}, "
        f"{summary['seconds']} s)"
    )


def _cmd_synth(a: argparse.Namespace) -> None:
    from esmscale.datasets import synthetic_esm, synthetic_precip, synthetic_temperature

    gen = synthetic_precip if a.variable == "pr" else synthetic_temperature
    ds = gen(a.ny, a.nx, a.days, seed=a.seed)
    coarse = synthetic_esm(ds, factor=a.esm_factor) if a.esm_factor else None
    ds.to_netcdf(a.output)
    print(f"wrote {a.output}: {dict(ds.sizes)}")
    if coarse is not None:  # the fine truth above, its coarse biased counterpart beside it
        coarse_path = _coarse_path(a.output)
        coarse.to_netcdf(coarse_path)
        print(f"wrote {coarse_path}: {dict(coarse.sizes)} (coarse ESM, factor {a.esm_factor})")


def _coarse_path(output: str) -> str:
    """``NAME_coarse.nc`` beside ``NAME.nc``: where ``synth --esm-factor`` puts the coarse field."""
    from pathlib import Path

    path = Path(output)
    return str(path.with_name(f"{path.stem}_coarse{path.suffix or '.nc'}"))


def _cmd_train(a: argparse.Namespace) -> None:
    from esmscale.training import TrainConfig, train

    cfg = TrainConfig(
        steps=a.steps,
        batch_size=a.batch_size,
        patch_size=a.patch_size,
        lr=a.lr,
        seed=a.seed,
        block_out_channels=tuple(a.channels),
        layers_per_block=a.layers_per_block,
        variable=a.variable,
        factor=a.factor,
        name=a.name,
        checkpoint_every=a.checkpoint_every,
        n_end=a.n_end,
        ema_decay=a.ema_decay,
    )
    model = train(a.obs, cfg, output_dir=a.output, resume=a.resume, progress=not a.quiet)
    print(f"saved {a.output}/model: {model}")


def _cmd_calibrate(a: argparse.Namespace) -> None:
    from esmscale.calibration import calibrate_noise_level
    from esmscale.datasets import coarsen_block
    from esmscale.prepare import field_values, open_dataset, select_variable, upsample_bilinear
    from esmscale.pretrained import load_model

    model = load_model(a.model)
    units = model.config.transform.units
    obs = field_values(select_variable(open_dataset(a.obs), a.variable), units)
    held = field_values(select_variable(open_dataset(a.held_out), a.variable), units)
    f = model.config.factor
    if a.esm:
        esm = field_values(select_variable(open_dataset(a.esm), a.variable), units)
        esm_fine = upsample_bilinear(esm, obs.shape[-1] // esm.shape[-1])
    else:
        esm_fine = upsample_bilinear(coarsen_block(held, f), f)
    cal = calibrate_noise_level(
        obs,
        esm_fine,
        model,
        held_out=held,
        members=a.members,
        max_fields=a.max_fields,
        min_corr=a.min_corr,
    )
    print(cal.summary())
    if a.output:
        model.config = model.config.replace(t_star=cal.t_star)
        model.save_pretrained(
            a.output,
            calibration=json.loads(
                json.dumps(
                    {
                        "t_star": cal.t_star,
                        "t_star_spectral": cal.t_star_spectral,
                        "k_star": cal.k_star,
                        "t_grid": cal.t_grid.tolist(),
                        "crps": cal.crps.tolist(),
                        "pooled_corr": cal.pooled_corr.tolist(),
                        "method": cal.method,
                    }
                )
            ),
        )
        print(f"saved calibrated model to {a.output}")


def _parse_chunks(text: str | None) -> dict[str, int]:
    from esmscale.errors import EsmscaleError

    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        if not value.strip().isdigit():
            raise EsmscaleError(f"--chunks {text!r}: expected NAME=INT[,NAME=INT], e.g. time=30.")
        out[key.strip()] = int(value)
    return out


def _cmd_downscale(a: argparse.Namespace) -> None:
    import time

    import esmscale  # noqa: F401  (registers the accessor)
    from esmscale.io.zarr import write_zarr
    from esmscale.pipeline import downscale
    from esmscale.prepare import open_dataset, select_variable

    t0 = time.perf_counter()
    chunks = _parse_chunks(a.chunks)
    root = a.catalog_root
    ds = open_dataset(a.input, root)
    da = select_variable(ds, a.variable)
    tchunk = chunks.pop("time", None)
    da = da.chunk({da.dims[0]: tchunk or 30})
    target = open_dataset(a.target, root) if a.target else None
    kwargs = {}
    if a.bias_correction:
        if not (a.reference and a.historical):
            from esmscale.errors import EsmscaleError

            raise EsmscaleError(
                f"--bias-correction {a.bias_correction} needs --reference OBS and "
                "--historical HIST."
            )
        kwargs = {
            "bias_correction": a.bias_correction,
            "reference": open_dataset(a.reference, root),
            "historical": open_dataset(a.historical, root),
        }
        if target is None:
            target = kwargs["reference"]
    t_star: float | str = "auto" if a.t_star == "auto" else float(a.t_star)
    result = downscale(
        da,
        a.model,
        target=target,
        members=a.members,
        seed=a.seed,
        t_star=t_star,
        steps=a.steps,
        chunks=chunks or None,
        **kwargs,
    )
    client = None
    if a.scheduler or a.workers:
        from distributed import Client, LocalCluster

        if a.scheduler:
            client = Client(a.scheduler)
        else:
            client = Client(
                LocalCluster(n_workers=a.workers, threads_per_worker=1, dashboard_address=None)
            )
    try:
        summary = write_zarr(
            result,
            a.output,
            resume=a.resume,
            overwrite=a.overwrite,
            progress=not a.quiet,
            client=client,
        )
    finally:
        if client is not None:
            client.close()
    seconds = time.perf_counter() - t0
    n_fields = result.sizes["member"] * result.sizes[result.dims[1]]
    print(
        f"wrote {a.output}: {n_fields} fields ({result.sizes['member']} members x "
        f"{result.sizes[result.dims[1]]} times) on a {result.shape[-2]}x{result.shape[-1]} grid, "
        f"{summary.n_chunks_written} chunks written, {summary.n_chunks_skipped} already there, "
        f"{n_fields / seconds:.2f} fields/s, t*={result.attrs['esmscale_t_star']:.3f}"
    )


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from pathlib import Path

    from esmscale.errors import EsmscaleError
    from esmscale.evaluate import evaluate
    from esmscale.prepare import open_dataset, select_variable

    results = {}
    for item in a.result:
        name, sep, path = item.partition("=")
        if not (sep and name and path):
            raise EsmscaleError(f"--result {item!r}: expected NAME=PATH, e.g. cm=downscaled.zarr.")
        results[name] = select_variable(open_dataset(path), a.variable)
    crps_vs_t = None
    if a.crps_vs_t:
        doc = json.loads(Path(a.crps_vs_t).read_text(encoding="utf-8"))
        doc = doc.get("calibration", doc)  # a calibrated model's config.json works too
        pairs = zip(doc["t_grid"], doc["crps"], strict=True) if "t_grid" in doc else doc.items()
        crps_vs_t = {float(t): float(c) for t, c in pairs}
    metrics = evaluate(
        select_variable(open_dataset(a.obs), a.variable),
        results,
        select_variable(open_dataset(a.coarse), a.variable) if a.coarse else None,
        output_dir=a.output,
        factor=a.factor,
        k_star=a.k_star,
        crps_vs_t=crps_vs_t,
        progress=not a.quiet,
        maps=not a.no_maps,
    )
    for name, m in metrics["methods"].items():
        corr = "" if m["pooled_corr"] is None else f", pooled r {m['pooled_corr']:.3f}"
        print(f"{name}: {m['score_name']} {m['score']:.4g}{corr}")
    print(f"wrote {metrics['files']['report']}")


def _cmd_forecast_train(a: argparse.Namespace) -> None:
    from esmscale.forecast import ForecastConfig, train
    from esmscale.prepare import open_dataset

    cfg = ForecastConfig(
        model=a.model,
        t_in=a.t_in,
        t_out=a.t_out,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        val_fraction=a.val_fraction,
        patience=a.patience,
        variable=a.variable,
        checkpoint_every=a.checkpoint_every,
    )
    model = train(
        open_dataset(a.data), cfg, output_dir=a.output, resume=a.resume, progress=not a.quiet
    )
    print(f"saved {a.output}/model: {model}")


def _cmd_forecast(a: argparse.Namespace) -> None:
    from pathlib import Path

    from esmscale.forecast import ForecastConfig, fit, forecast, load_forecaster
    from esmscale.prepare import open_dataset

    ds = open_dataset(a.data)
    if Path(a.model).exists():
        model = load_forecaster(a.model)
    else:  # a baseline name: persistence, climatology, optical_flow
        model = fit(a.model, ds, ForecastConfig(variable=a.variable))
    out = forecast(ds, model, lead=a.lead, variable=a.variable, chunk_size=a.chunk_size)
    out.to_dataset(name=str(out.name or "forecast")).to_netcdf(a.output)
    print(f"wrote {a.output}: {dict(out.sizes)}")


def build_parser() -> argparse.ArgumentParser:
    """The ``esmscale`` argument parser."""
    p = argparse.ArgumentParser(
        prog="esmscale",
        description=(
            "Zero-shot probabilistic downscaling of Earth system model output with consistency "
            "models."
        ),
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="downscale a synthetic ESM sample with the shipped model")
    d.add_argument("--output", default="esmscale-demo", help="output folder (Zarr + PNG)")
    d.add_argument("--members", type=int, default=4, help="ensemble members (default 4)")
    d.add_argument("--days", type=int, default=8, help="number of days (default 8)")
    d.add_argument("--seed", type=int, default=0, help="noise seed")
    d.add_argument("--model", default="synthetic-pr-4x", help="model name or checkpoint path")
    d.set_defaults(func=_cmd_demo)

    s = sub.add_parser("synth", help="write a synthetic high-resolution (or coarse ESM) dataset")
    s.add_argument("output", help="NetCDF file to write")
    s.add_argument("--variable", choices=["pr", "tas"], default="pr")
    s.add_argument("--ny", type=int, default=64)
    s.add_argument("--nx", type=int, default=64)
    s.add_argument("--days", type=int, default=365)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--esm-factor",
        type=int,
        default=0,
        help="if > 0, write the coarse biased ESM counterpart at this factor",
    )
    s.set_defaults(func=_cmd_synth)

    t = sub.add_parser("train", help="train a consistency model on high-resolution observations")
    t.add_argument("obs", help="NetCDF file, Zarr store or glob of observations (time, y, x)")
    t.add_argument("--output", required=True, help="output folder (model/ and training_state/)")
    t.add_argument("--variable", default=None, help="variable name if the file has several")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--patch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--channels", type=int, nargs="+", default=[32, 32, 64, 64], help="UNet block_out_channels"
    )
    t.add_argument("--layers-per-block", type=int, default=1)
    t.add_argument("--n-end", type=int, default=80, help="final discretisation size")
    t.add_argument("--ema-decay", type=float, default=0.999)
    t.add_argument("--factor", type=int, default=4, help="downscaling factor to record")
    t.add_argument("--name", default="esmscale-cm", help="model name")
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--resume", action="store_true", help="continue from OUTPUT/training_state")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    w = sub.add_parser(
        "downscale",
        help="downscale coarse ESM data to a Zarr store",
        description="Downscale coarse ESM fields into a high-resolution ensemble "
        "written to Zarr (template first, then chunks; --resume fills in missing "
        "chunks of an interrupted run).",
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
    w.add_argument("--model", default="synthetic-pr-4x", help="model name or checkpoint path")
    w.add_argument("--output", required=True, help="output Zarr store (OUT.zarr)")
    w.add_argument("--variable", default=None, help="variable name if the input has several")
    w.add_argument("--members", type=int, default=1, help="ensemble members")
    w.add_argument("--seed", type=int, default=0, help="noise seed")
    w.add_argument("--t-star", default="auto", help="noise level or 'auto' (model default)")
    w.add_argument("--steps", type=int, default=1, help="network calls per member")
    w.add_argument("--target", default=None, help="file whose lat/lon grid is the output grid")
    w.add_argument(
        "--bias-correction",
        choices=["qdm", "qdm-mean"],
        default=None,
        help="quantile delta mapping before the model (needs --reference, --historical); "
        "qdm-mean also keeps the model's change in each cell's mean",
    )
    w.add_argument("--reference", default=None, help="observations on the target grid (QDM)")
    w.add_argument("--historical", default=None, help="the ESM's historical run (QDM)")
    w.add_argument(
        "--chunks", default=None, help="chunk sizes, e.g. time=30 or time=30,lat=128,lon=128"
    )
    w.add_argument(
        "--workers",
        type=int,
        default=0,
        help="start a dask.distributed LocalCluster with N workers",
    )
    w.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    w.add_argument("--resume", action="store_true", help="compute only missing chunks")
    w.add_argument("--overwrite", action="store_true", help="replace an existing store")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=_cmd_downscale)

    c = sub.add_parser("calibrate", help="choose t* (spectral rule and perfect-model search)")
    c.add_argument("model", help="model name or checkpoint path")
    c.add_argument("--obs", required=True, help="training-period observations")
    c.add_argument("--held-out", required=True, help="held-out observations (perfect model)")
    c.add_argument(
        "--esm",
        default=None,
        help="coarse ESM file for the spectral rule (default: held-out obs coarsened)",
    )
    c.add_argument("--variable", default=None)
    c.add_argument("--members", type=int, default=4)
    c.add_argument("--max-fields", type=int, default=32)
    c.add_argument("--min-corr", type=float, default=0.95)
    c.add_argument("--output", default=None, help="save the model with the chosen t* here")
    c.set_defaults(func=_cmd_calibrate)

    e = sub.add_parser(
        "evaluate",
        help="score downscaled results against observations; write report.md and figures",
    )
    e.add_argument("obs", help="observations on the results' grid (NetCDF, Zarr or glob)")
    e.add_argument(
        "--result",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a result to score (repeat for several), e.g. --result cm=downscaled.zarr",
    )
    e.add_argument("--coarse", default=None, help="the coarse input that was downscaled")
    e.add_argument("--output", required=True, help="output folder (report.md, PNGs, JSON)")
    e.add_argument("--variable", default=None, help="variable name if the files have several")
    e.add_argument("--factor", type=int, default=None, help="downscaling factor (default: grids)")
    e.add_argument("--k-star", type=float, default=None, help="PSD error for k >= K (cycles/cell)")
    e.add_argument(
        "--crps-vs-t",
        default=None,
        help="JSON {t: CRPS}, or a calibrated model's config.json (t_grid, crps)",
    )
    e.add_argument("--no-maps", action="store_true", help="maps without coastlines (no Cartopy)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_evaluate)

    ft = sub.add_parser("forecast-train", help="train a PastNet/SimVP/FNO forecaster")
    ft.add_argument(
        "data", help="NetCDF/Zarr with a (time, y, x) or (time, channel, y, x) variable"
    )
    ft.add_argument("--output", required=True, help="output folder (model/ and training_state/)")
    ft.add_argument("--model", choices=["pastnet", "simvp", "fno"], default="pastnet")
    ft.add_argument("--variable", default=None)
    ft.add_argument("--t-in", type=int, default=10)
    ft.add_argument("--t-out", type=int, default=10)
    ft.add_argument("--steps", type=int, default=2000)
    ft.add_argument("--batch-size", type=int, default=16)
    ft.add_argument("--lr", type=float, default=1e-3)
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--val-fraction", type=float, default=0.2)
    ft.add_argument("--patience", type=int, default=5)
    ft.add_argument("--checkpoint-every", type=int, default=500)
    ft.add_argument("--resume", action="store_true", help="continue from OUTPUT/training_state")
    ft.add_argument("--quiet", action="store_true", help="no progress bar")
    ft.set_defaults(func=_cmd_forecast_train)

    fc = sub.add_parser("forecast", help="forecast from every init time to a NetCDF file")
    fc.add_argument("data", help="NetCDF/Zarr history")
    fc.add_argument("--model", required=True, help="checkpoint folder or baseline name")
    fc.add_argument("--output", required=True, help="NetCDF file to write")
    fc.add_argument("--variable", default=None)
    fc.add_argument("--lead", type=int, default=None, help="steps ahead (default: model t_out)")
    fc.add_argument("--chunk-size", type=int, default=32, help="init times per Dask task")
    fc.set_defaults(func=_cmd_forecast)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``esmscale`` command."""
    from esmscale.errors import EsmscaleError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except EsmscaleError as err:
        print(f"esmscale {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
