"""Speed benchmark: one-step consistency sampling vs the same network run as a 500-step sampler.

Both start from the same noisy field at the same t* and run on the same machine in one run;
the 500-step sampler integrates the probability-flow ODE with the model as denoiser (one network
call per step). Reports seconds per downscaled sample at 64x64 and 128x128 and their ratio.

Usage: ``python benchmarks/speed.py [--quick] [--model NAME_OR_PATH]``
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch
from _common import write_results

from esmscale import load_model
from esmscale.downscaling.arrays import resolve_t_star
from esmscale.models.sampler import consistency_sample, field_noise, ode_sample


def _time(fn, repeats: int) -> float:
    """Mean wall time of ``repeats`` calls after one warm-up call (means, not minima, so that
    both samplers are measured the same way: the 500-step sampler is itself a mean over calls)."""
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sampler steps, same code paths")
    ap.add_argument("--model", default="synthetic-pr-4x")
    args = ap.parse_args()
    model = load_model(args.model)
    t_star = resolve_t_star(model, "auto")
    n_steps = 50 if args.quick else 500
    res: dict[str, object] = {
        "model": args.model,
        "t_star": t_star,
        "sampler_steps": n_steps,
        "batch_size": 1,
    }
    for size in (64, 128):
        x = np.zeros((1, size, size), dtype=np.float32)
        noise = field_noise(0, 0, 0, (size, size))[None, None]
        one = _time(partial(consistency_sample, model, x, t_star, noise, batch_size=1), 20)
        many = _time(partial(ode_sample, model, x, t_star, noise, n_steps=n_steps, batch_size=1), 1)
        if args.quick:
            many *= 500 / n_steps  # extrapolated: the sampler's cost is linear in its steps
        res[f"sec_per_sample_cm_{size}"] = one
        res[f"sec_per_sample_500step_{size}"] = many
        res[f"speed_ratio_{size}"] = many / one
    res["torch_threads"] = torch.get_num_threads()
    write_results("speed", res, args.quick)


if __name__ == "__main__":
    main()
