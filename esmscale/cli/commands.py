"""The ``esmscale`` commands: each turns parsed arguments into API calls (heavy imports inside).

Errors are raised as :class:`~esmscale.errors.EsmscaleError` and printed by
:func:`esmscale.cli.main` in command-line terms.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from esmscale.errors import EsmscaleError


def _cmd_demo(a: argparse.Namespace) -> None:
    from esmscale.demo import format_summary, run_demo

    summary = run_demo(
        a.output,
        members=a.members,
        days=a.days,
        seed=a.seed,
        model=a.model,
        bias_correction=a.bias_correction,
    )
    print(
        f"wrote {summary['zarr']} and {summary['png']} "
        f"({summary['members']} members x {summary['days']} days from {summary['date']}, "
        f"bias correction {summary['bias_correction']}, t*={summary['t_star']:.3f}, "
        f"{summary['seconds']} s)"
    )
    print(format_summary(summary))


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
    path = Path(output)
    return str(path.with_name(f"{path.stem}_coarse{path.suffix or '.nc'}"))


def _cmd_train(a: argparse.Namespace) -> None:
    from esmscale.downscaling.training import TrainConfig, train

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
    try:
        model = train(
            a.obs,
            cfg,
            output_dir=a.output,
            resume=a.resume,
            overwrite=a.overwrite,
            progress=not a.quiet,
            check=a.check,
            device=a.device,
            precision=a.precision,
        )
    except KeyboardInterrupt:
        state = Path(a.output) / "training_state"
        if not state.exists():
            raise
        raise KeyboardInterrupt(
            f"the training state in {state} was saved at the last checkpoint; continue with: "
            f"{_resume_command(a.argv)}"
        ) from None
    print(f"saved {a.output}/model: {model}")


def _cmd_calibrate(a: argparse.Namespace) -> None:
    from esmscale.downscaling.calibration import calibrate_esm
    from esmscale.prepare import open_dataset
    from esmscale.pretrained import load_model

    model = load_model(a.model)
    cal = calibrate_esm(
        open_dataset(a.esm) if a.esm else None,
        open_dataset(a.obs),
        model,
        held_out=open_dataset(a.held_out),
        variable=a.variable,
        check=a.check,
        progress=not a.quiet,
        members=a.members,
        max_fields=a.max_fields,
        min_corr=a.min_corr,
        device=a.device,
        precision=a.precision,
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
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        if not value.strip().isdigit():
            raise EsmscaleError(f"--chunks {text!r}: expected NAME=INT[,NAME=INT], e.g. time=30.")
        out[key.strip()] = int(value)
    return out


def _storage_options(items: list[str]) -> dict[str, Any]:
    """``--storage-option KEY=VALUE`` items as a dict; JSON values (true, 3) are parsed."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not (sep and key.strip()):
            raise EsmscaleError(
                f"--storage-option {key.strip() or item[:20]!r}...: expected KEY=VALUE, e.g. "
                "endpoint_url=http://127.0.0.1:9000"
            )
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted run: the same arguments plus --resume."""
    args = [x for x in argv if x != "--overwrite"]
    return shlex.join(["esmscale", *args, *([] if "--resume" in args else ["--resume"])])


def _interrupted_write(store: str, argv: list[str], options: dict[str, Any]) -> str:
    """One line: what an interrupted ``downscale`` left in ``store`` and how to finish it."""
    from esmscale.io.zarr import chunk_counts

    counts = chunk_counts(store, options or None)
    if counts is None:
        return f"nothing was written to {store}"
    return (
        f"{counts[0]} of {counts[1]} chunks were written to {store}; write the rest with: "
        f"{_resume_command(argv)}"
    )


def _parse_resources(text: str | None) -> dict[str, float] | None:
    """``"GPU=1,MEM=4e9"`` -> ``{"GPU": 1.0, "MEM": 4e9}`` (None for no text)."""
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError(part)
            out[name.strip()] = float(value)
        except ValueError:
            raise EsmscaleError(
                f"--worker-resources {text!r}: {part!r} is not NAME=AMOUNT; give e.g. "
                "--worker-resources GPU=1 (several: GPU=1,MEM=4e9)."
            ) from None
    return out


def _cmd_downscale(a: argparse.Namespace) -> None:
    import time

    import esmscale  # noqa: F401  (registers the accessor)
    from esmscale.downscaling import methods
    from esmscale.downscaling.engine import Engine, open_engine
    from esmscale.io.stores import open_location
    from esmscale.io.zarr import write_zarr
    from esmscale.prepare import check_field, open_dataset, select_variable

    t0 = time.perf_counter()
    method = methods.get(a.method)  # an unknown name lists the registered ones
    chunks = _parse_chunks(a.chunks)
    options = _storage_options(a.storage_option)
    open_location(a.output, options or None)  # a URL's backend and credentials, before any work
    root = a.catalog_root
    ds = open_dataset(a.input, root)
    da = select_variable(ds, a.variable)
    tchunk = chunks.pop("time", None)
    da = da.chunk({da.dims[0]: tchunk or 30})
    # one streaming pass over the input before anything is written (counts over all chunks)
    check_field(da, a.check, scan=True)
    target = open_dataset(a.target, root) if a.target else None
    kwargs = {}
    if a.bias_correction:
        if not (a.reference and a.historical):
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
    if a.steps is not None:
        kwargs["steps"] = a.steps
    kwargs.update(device=a.device, precision=a.precision)
    if a.restore is not None or a.spread:
        kwargs.update(restore=a.restore, spread=a.spread, spread_length=a.spread_length)
    resources = _parse_resources(a.worker_resources)
    if resources:
        kwargs["resources"] = resources
    engine = Engine(
        workers=a.workers,
        scheduler=a.scheduler,
        timeout=a.scheduler_timeout,
        memory_limit=a.memory_limit,
        resources=resources,
    )
    with open_engine(engine) as client:  # the model is sent to its workers by the method
        result = method(
            da,
            a.model,
            target=target,
            members=a.members,
            seed=a.seed,
            t_star=t_star,
            chunks=chunks or None,
            check="off",  # checked above
            **kwargs,
        )
        try:
            summary = write_zarr(
                result,
                a.output,
                storage_options=options or None,
                resume=a.resume,
                overwrite=a.overwrite,
                progress=not a.quiet,
                client=client,
            )
        except KeyboardInterrupt:
            raise KeyboardInterrupt(_interrupted_write(a.output, a.argv, options)) from None
    seconds = time.perf_counter() - t0
    n_fields = result.sizes["member"] * result.sizes[result.dims[1]]
    print(
        f"wrote {a.output}: {n_fields} fields ({result.sizes['member']} members x "
        f"{result.sizes[result.dims[1]]} times) on a {result.shape[-2]}x{result.shape[-1]} grid, "
        f"{summary.n_chunks_written} chunks written, {summary.n_chunks_skipped} already there, "
        f"{n_fields / seconds:.2f} fields/s, method {a.method}"
        + (f", t*={ts:.3f}" if (ts := result.attrs.get("esmscale_t_star")) is not None else "")
    )


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from esmscale.prepare import check_field, open_dataset, select_variable
    from esmscale.report.evaluation import evaluate

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
    obs = check_field(select_variable(open_dataset(a.obs), a.variable), a.check)
    coarse = None
    if a.coarse:
        coarse = check_field(select_variable(open_dataset(a.coarse), a.variable), a.check)
    metrics = evaluate(
        obs,
        results,
        coarse,
        output_dir=a.output,
        factor=a.factor,
        k_star=a.k_star,
        crps_vs_t=crps_vs_t,
        progress=not a.quiet,
        maps=not a.no_coastlines,
        coastline_data=a.coastline_data,
        download_coastlines=True if a.download_coastlines else None,
        indices=not a.no_indices,
        fss=not a.no_indices,
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
        open_dataset(a.data),
        cfg,
        output_dir=a.output,
        resume=a.resume,
        overwrite=a.overwrite,
        progress=not a.quiet,
        check=a.check,
        device=a.device,
        precision=a.precision,
    )
    print(f"saved {a.output}/model: {model}")


def _cmd_forecast(a: argparse.Namespace) -> None:
    from esmscale.cli.parser import FORECAST_BASELINES, FORECAST_NETWORKS
    from esmscale.forecast import ForecastConfig, fit, forecast, load_forecaster
    from esmscale.prepare import compute_clipped, open_dataset

    if not Path(a.model).exists() and a.model not in FORECAST_BASELINES:
        kind = (
            f"a network that must be trained first (esmscale forecast-train DATA --model "
            f"{a.model} --output DIR, then --model DIR/model)"
            if a.model in FORECAST_NETWORKS
            else "neither an existing checkpoint folder nor a baseline"
        )
        raise EsmscaleError(
            f"--model {a.model!r} is {kind}; baselines: {', '.join(FORECAST_BASELINES)}."
        )
    ds = open_dataset(a.data)
    if Path(a.model).exists():
        model = load_forecaster(a.model)
    else:
        model = fit(a.model, ds, ForecastConfig(variable=a.variable))
    out = forecast(
        ds,
        model,
        lead=a.lead,
        variable=a.variable,
        chunk_size=a.chunk_size,
        check=a.check,
        device=a.device,
        precision=a.precision,
    )
    out = compute_clipped(out)  # records esmscale_clipped_fraction for precipitation
    out.to_dataset(name=str(out.name or "forecast")).to_netcdf(a.output)
    print(f"wrote {a.output}: {dict(out.sizes)}")


def _cmd_models(a: argparse.Namespace) -> None:
    from esmscale.pretrained.catalog import format_table, model_catalog, register_model_folder

    for folder in a.folder or []:
        register_model_folder(folder)
    entries = model_catalog()
    if a.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
    else:
        print(format_table(entries))


def _cmd_catalog(a: argparse.Namespace) -> None:
    from esmscale.io.catalog_build import build_catalog

    print(build_catalog(a.folder, a.output).summary())
