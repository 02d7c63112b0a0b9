"""visionkit benchmark: MoPE, invariant test-time prompt tuning and UIT on generated data.

1. A tiny CLIP is pre-trained contrastively on generated shapes (with a background shortcut,
   correlation 0.8) and persons -- the same as
   ``python -m visionkit pretrain --out runs/visionkit/tiny-clip --steps 3000`` -- or loaded with
   ``--backbone DIR``.
2. Shape-caption entailment (3 classes): MoPE vs deep prompt tuning with (almost) the same number
   of trainable parameters vs late fusion (linear head on frozen features).
3. Shifted shapes split (backgrounds independent of shapes): zero-shot vs TPT vs invariant
   test-time prompt tuning; average and worst-group accuracy (groups: shape x background).
4. Text-to-person retrieval on unseen identities: CLIP contrastive fine-tuning (baseline), then the
   UIT losses added one at a time (SDM, +ID, +triplet, +restoration, +caption augmentation).

Every number is mean +- std over ``--seeds`` seeds (default 3, 2 with --quick; method
initialisation, batch order, test data); the backbone is pre-trained once (seed 0).

5. Probes (issue 17, ``benchmarks/_visionkit_probes.py``): settings where each method's mechanism
   should matter, each with a control, over ``--probe-seeds`` seeds (default 5, 2 with --quick):
   a shortcut-strength sweep for invariant TTA, a complementary-modality task with test-time
   modality dropout and 100 / 1,000 / all training pairs for MoPE, and noisy/partial captions, a
   small fine-tuning set and an unseen-attribute split for UIT. JSON keys ``seeds`` (the probes'
   seeds), ``tta_sweep``, ``mope_sweep``, ``uit_noisy`` (and ``uit_probe`` with every split),
   ``verdicts``.

Usage::

    python benchmarks/visionkit.py --quick          # same paths, small sizes, 2 seeds (< 5 min)
    python benchmarks/visionkit.py                  # full run: 2 processes (--jobs 2)
    python benchmarks/visionkit.py --backbone runs/visionkit/tiny-clip
    python benchmarks/visionkit.py --only probes    # probes only, merged into the existing JSON
    python benchmarks/visionkit.py --only tta       # one probe (tta, mope or uit), merged
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

# This script is named like the package: drop its own folder from the path so that
# `import visionkit` finds the package (the repository root is added in case it is not installed).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from visionkit import api  # noqa: E402
from visionkit.backbones import ClipBackbone, TinyClipConfig  # noqa: E402
from visionkit.methods.late_fusion import matched_hidden  # noqa: E402
from visionkit.methods.mope import MoPEConfig, mope_parameter_count  # noqa: E402
from visionkit.methods.prompt_tuning import matched_prompt_length  # noqa: E402
from visionkit.training import TrainConfig  # noqa: E402

sys.path.insert(0, str(_HERE))
from _common import RESULTS, write_results  # noqa: E402
from _visionkit_probes import UIT_LOSS_SETS, run_probes, verdicts  # noqa: E402

SETTINGS: dict[str, dict[str, Any]] = {
    # --quick checks that every path runs (under 5 min on 2 cores, with 2 seeds and 2 probe seeds):
    # its numbers are not evidence.
    "quick": {
        "pretrain_steps": 300,
        "num_shapes": 2000,
        "num_persons": 100,
        "cls_steps": 40,
        "cls_examples": 1000,
        "cls_test": 300,
        "tta_test": 64,
        "tpt_views": 16,
        "uit_steps": 20,
        "uit_examples": 400,
        "uit_test_ids": 100,
    },
    "full": {
        "pretrain_steps": 3000,
        "num_shapes": 8000,
        "num_persons": 400,
        "cls_steps": 600,
        "cls_examples": 6000,
        "cls_test": 2000,
        "tta_test": 800,
        "tpt_views": 64,
        "uit_steps": 600,
        "uit_examples": 3200,
        "uit_test_ids": 250,
    },
}

UIT_VARIANTS = UIT_LOSS_SETS  # each adds one part of UIT to the previous


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def classification(backbone: ClipBackbone, cfg: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    mope_cfg = MoPEConfig(num_classes=3)
    dv, dt, n = backbone.vision_width, backbone.text_width, backbone.num_vision_layers
    mope_params = mope_parameter_count(mope_cfg, dv, dt, n)
    length = matched_prompt_length(mope_params, 3, dv, dt, n)
    hidden = matched_hidden(mope_params, 3, dv, dt)
    methods: dict[str, tuple[str, dict[str, Any]]] = {
        "mope": ("mope", {}),
        "prompt_tuning": ("prompt_tuning", {"prompt_length": length}),
        "late_fusion": ("late_fusion", {"hidden": hidden}),
        "late_fusion_linear": ("late_fusion", {}),
    }
    out: dict[str, Any] = {}
    for name, (method, overrides) in methods.items():
        accs, params = [], 0
        for seed in seeds:
            train_cfg = TrainConfig(steps=cfg["cls_steps"], batch_size=64, lr=3e-3, seed=seed)
            model = api.train(
                method,
                backbone,
                method_config=overrides,
                train=train_cfg,
                num_examples=cfg["cls_examples"],
                seed=seed,
            )
            params = model.parameter_count().trainable
            accs.append(api.evaluate(model, num_examples=cfg["cls_test"], seed=seed)["accuracy"])
            log(f"{name} seed {seed}: accuracy {accs[-1]:.3f} ({params} trainable)")
        out[f"{name}_acc"] = summary(accs)
        out[f"{name}_trainable_params"] = params
        out[f"{name}_config"] = overrides
    out["backbone_params"] = backbone.parameter_count().total
    return out


def test_time(backbone: ClipBackbone, cfg: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    methods: dict[str, dict[str, Any] | None] = {
        "zeroshot": None,
        "tpt": {"num_views": cfg["tpt_views"]},
        "tta": {},
    }
    out: dict[str, Any] = {}
    for name, config in methods.items():
        acc, worst = [], []
        start = time.perf_counter()
        for seed in seeds:
            method = {"zeroshot": "zero_shot", "tta": "invariant_tta"}.get(name, name)
            r = api.adapt(
                method, backbone, method_config=config, num_examples=cfg["tta_test"], seed=seed
            )
            acc.append(r["accuracy"])
            worst.append(r["worst_group_accuracy"])
            log(f"{name} seed {seed}: acc {acc[-1]:.3f} worst-group {worst[-1]:.3f}")
        out[f"{name}_acc"] = summary(acc)
        out[f"{name}_worst_group_acc"] = summary(worst)
        out[f"{name}_seconds_per_image"] = (time.perf_counter() - start) / (
            len(seeds) * cfg["tta_test"]
        )
    return out


def retrieval(backbone: ClipBackbone, cfg: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, overrides in UIT_VARIANTS.items():
        rank1, mean_ap = [], []
        for seed in seeds:
            model = api.train(
                "uit",
                copy.deepcopy(backbone),
                method_config=overrides,
                train=TrainConfig(steps=cfg["uit_steps"], batch_size=64, lr=3e-4, seed=seed),
                num_examples=cfg["uit_examples"],
                seed=seed,
            )
            m = api.evaluate_retrieval(
                model.backbone, num_identities=cfg["uit_test_ids"], seed=seed
            )
            rank1.append(m["rank1"])
            mean_ap.append(m["mAP"])
            log(f"uit[{name}] seed {seed}: rank1 {rank1[-1]:.3f} mAP {mean_ap[-1]:.3f}")
        key = "baseline" if name == "baseline" else f"uit_{name}" if name != "uit" else "uit"
        out[f"{key}_rank1"] = summary(rank1)
        out[f"{key}_mAP"] = summary(mean_ap)
    zero = api.evaluate_retrieval(backbone, num_identities=cfg["uit_test_ids"], seed=0)
    out["pretrained_rank1"] = zero["rank1"]
    out["pretrained_mAP"] = zero["mAP"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, same code paths")
    parser.add_argument("--backbone", help="pre-trained backbone directory (skip pre-training)")
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds per method (default 3, --quick 2)"
    )
    parser.add_argument("--save-backbone", help="also save the pre-trained backbone here")
    parser.add_argument(
        "--probe-seeds", type=int, default=None, help="seeds per probe (default 5, --quick 2)"
    )
    parser.add_argument(
        "--probe-cache",
        default=str(_HERE.parent / "runs" / "visionkit" / "probe-backbones"),
        help="directory where the probes' pre-trained backbones are saved and reused "
        "('' to always pre-train)",
    )
    parser.add_argument(
        "--only",
        choices=("all", "main", "probes", "tta", "tta_diag", "mope", "mope_diag", "uit"),
        default="all",
        help="run only the main experiments, only the probes, or one probe; the keys of the parts "
        "not run are kept from the existing results file",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes (one torch thread each): with 2, the TTA and MoPE probes run beside the "
        "main experiments (default: 2 where the machine has 2 cores)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.seeds is None:
        args.seeds = 2 if args.quick else 3
    if args.probe_seeds is None:
        args.probe_seeds = 2 if args.quick else 5
    probe_seeds = list(range(args.probe_seeds))
    if args.only in ("probes", "tta", "tta_diag", "mope", "mope_diag", "uit"):
        run_probes_only(args.quick, probe_seeds, args.only, args.probe_cache or None)
        return
    cfg = SETTINGS["quick" if args.quick else "full"]
    seeds = list(range(args.seeds))
    timings: dict[str, float] = {}
    wall = time.perf_counter()
    cache = args.probe_cache or None
    pool, background = None, None
    if args.only == "all" and args.jobs > 1:
        # The TTA and MoPE probes run in a second single-threaded process while this one runs
        # the main experiments and then the UIT probe: the two halves take about as long.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_one_thread)
        background = pool.submit(run_probes, args.quick, probe_seeds, ("tta", "mope"), cache)

    start = time.perf_counter()
    if args.backbone:
        backbone = ClipBackbone.from_pretrained(args.backbone)
        pretrain_info: dict[str, Any] = {"loaded_from": args.backbone}
    else:
        train_cfg = TrainConfig(steps=cfg["pretrain_steps"], batch_size=128, lr=2e-3)
        backbone = api.pretrain(
            args.save_backbone,
            config=TinyClipConfig(),
            train=train_cfg,
            num_shapes=cfg["num_shapes"],
            num_persons=cfg["num_persons"],
        )
        pretrain_info = {"steps": train_cfg.steps, "batch_size": 128, "lr": 2e-3}
    timings["pretrain_s"] = time.perf_counter() - start
    log(f"backbone ready in {timings['pretrain_s']:.0f} s")

    results: dict[str, Any] = {"settings": cfg, "main_seeds": seeds, "pretrain": pretrain_info}
    results["backbone_config"] = TinyClipConfig().to_dict()
    for name, fn in (
        ("classification", classification),
        ("test_time", test_time),
        ("retrieval", retrieval),
    ):
        start = time.perf_counter()
        results.update(fn(backbone, cfg, seeds))
        timings[f"{name}_s"] = time.perf_counter() - start
        log(f"{name} done in {timings[f'{name}_s']:.0f} s")
    results["tta_worst_group_acc"] = results.pop("tta_worst_group_acc")
    results["timings"] = timings
    if args.only == "all":
        if background is not None:
            results.update(merge_probes(run_probes(args.quick, probe_seeds, ("uit",), cache)))
            results.update(merge_probes(background.result(), results))
            pool.shutdown()  # type: ignore[union-attr]
        else:
            results.update(run_probes(args.quick, probe_seeds, cache_dir=cache))
        results["wall_s"] = time.perf_counter() - wall
        results["jobs"] = args.jobs
        results["verdicts"] = verdicts(results)
    else:
        previous = _previous(args.quick)
        probe_keys = ("probe_settings", "seeds", "tta_sweep", "mope_sweep", "uit_probe")
        kept = (*probe_keys, "uit_noisy", "probe_timings")
        results.update({k: previous[k] for k in kept if k in previous})
        results["verdicts"] = verdicts(results)
    write_results("visionkit", results, args.quick)


def _one_thread() -> None:
    torch.set_num_threads(1)


def merge_probes(new: dict[str, Any], into: dict[str, Any] | None = None) -> dict[str, Any]:
    """``new`` probe results with their timings added to those already in ``into``."""
    timings = {**(into or {}).get("probe_timings", {}), **new["probe_timings"]}
    return {**new, "probe_timings": timings}


def _previous(quick: bool) -> dict[str, Any]:
    path = RESULTS / ("visionkit_quick.json" if quick else "visionkit.json")
    return json.loads(path.read_text()) if path.exists() else {}


def run_probes_only(quick: bool, seeds: list[int], only: str, cache: str | None) -> None:
    """Run the probes (or one) and merge their keys into the existing results file."""
    parts = ("tta", "mope", "uit") if only == "probes" else (only,)
    results = _previous(quick)
    if "seeds" in results and "main_seeds" not in results:
        results["main_seeds"] = results["seeds"]
    for key in ("benchmark", "quick", "date", "machine", "versions"):
        if key in results:
            results[f"main_{key}" if key == "date" else key] = results[key]
    for key in ("benchmark", "quick", "machine", "versions"):
        results.pop(key, None)
    results.pop("date", None)
    new = run_probes(quick, seeds, parts, cache)
    timings = {**results.get("probe_timings", {}), **new.pop("probe_timings")}
    for strength, extra in new.pop("tta_diagnostics", {}).items():
        if strength in results.get("tta_sweep", {}):
            results["tta_sweep"][strength].update(extra)
    extra_mope = new.pop("mope_diagnostics", {})
    for setting, extra in extra_mope.items():
        if setting in results.get("mope_sweep", {}):
            results["mope_sweep"][setting].update(extra)
    results.update(new)
    results["probe_timings"] = timings
    results["verdicts"] = verdicts(results)
    write_results("visionkit", results, quick)


if __name__ == "__main__":
    main()
