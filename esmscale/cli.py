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
    if a.esm_factor:
        ds = synthetic_esm(ds, factor=a.esm_factor)
    ds.to_netcdf(a.output)
    print(f"wrote {a.output}: {dict(ds.sizes)}")


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
