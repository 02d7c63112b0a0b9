"""Command line: ``python -m visionkit {pretrain,train,evaluate,adapt} ...`` (parsing only)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from esmscale.cli.parser import add_device_arguments
from visionkit import api
from visionkit.backbones.clip import TinyClipConfig
from visionkit.methods import TEST_TIME, TRAINED
from visionkit.training import TrainConfig

#: Optional modules -> the pip extra of esmscale that installs them.
_EXTRAS = {"transformers": "visionkit", "open_clip": "open_clip"}


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object such as '{\"num_experts\": 2}'")
    return value


def _add_train_args(p: argparse.ArgumentParser, steps: int, batch: int, lr: float) -> None:
    p.add_argument("--steps", type=int, default=steps, help=f"optimiser steps (default {steps})")
    p.add_argument("--batch-size", type=int, default=batch, help=f"batch size (default {batch})")
    p.add_argument("--lr", type=float, default=lr, help=f"AdamW learning rate (default {lr})")
    p.add_argument("--seed", type=int, default=0, help="seed of data and training (default 0)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="python -m visionkit",
        description="Tiny CLIP pre-training, MoPE/prompt tuning/UIT training and test-time "
        "adaptation on generated data. Results are printed as one JSON line.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default: torch's choice; 1 is fastest for these tiny models on "
        "a shared machine)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="pre-train a tiny CLIP contrastively and save it")
    p.add_argument("--out", required=True, help="directory for config.json/model.safetensors")
    p.add_argument("--config", type=_json_dict, default={}, help="TinyClipConfig fields as JSON")
    p.add_argument("--num-shapes", type=int, default=6000)
    p.add_argument("--num-persons", type=int, default=300)
    p.add_argument("--correlation", type=float, default=0.8, help="shape-background shortcut")
    _add_train_args(p, steps=1500, batch=128, lr=2e-3)
    add_device_arguments(p)

    p = sub.add_parser("train", help="train a method on its generated task")
    p.add_argument("method", choices=sorted(TRAINED))
    p.add_argument("--backbone", required=True, help="directory written by `pretrain`")
    p.add_argument("--out", help="directory for method.json/method.safetensors")
    p.add_argument("--method-config", type=_json_dict, default={}, help="config fields as JSON")
    p.add_argument("--num-examples", type=int, default=3000)
    _add_train_args(p, steps=300, batch=64, lr=1e-3)
    add_device_arguments(p)

    p = sub.add_parser("evaluate", help="evaluate a trained method (or retrieval of a backbone)")
    p.add_argument("--backbone", required=True, help="directory written by `pretrain`")
    p.add_argument("--model", help="directory written by `train`; omit for backbone retrieval")
    p.add_argument("--num-examples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    add_device_arguments(p)

    p = sub.add_parser("adapt", help="test-time adaptation on the shifted shapes split")
    p.add_argument("method", choices=["zero_shot", *sorted(TEST_TIME)])
    p.add_argument("--backbone", required=True, help="directory written by `pretrain`")
    p.add_argument("--method-config", type=_json_dict, default={}, help="config fields as JSON")
    p.add_argument("--num-examples", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    add_device_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    place = {"device": args.device, "precision": args.precision}
    try:
        result: dict[str, Any]
        if args.command == "pretrain":
            train_cfg = TrainConfig(
                steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed
            )
            api.pretrain(
                args.out,
                config=TinyClipConfig.from_dict(args.config),
                train=train_cfg,
                num_shapes=args.num_shapes,
                num_persons=args.num_persons,
                correlation=args.correlation,
                seed=args.seed,
                **place,
            )
            result = {"saved": args.out}
        elif args.command == "train":
            train_cfg = TrainConfig(
                steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed
            )
            model = api.train(
                args.method,
                args.backbone,
                out=args.out,
                method_config=args.method_config,
                train=train_cfg,
                num_examples=args.num_examples,
                seed=args.seed,
                **place,
            )
            count = model.parameter_count()
            result = {
                "method": args.method,
                "trainable": count.trainable,
                "frozen": count.frozen,
                "saved": args.out,
                **api.evaluate(model, num_examples=args.num_examples // 3, seed=args.seed, **place),
            }
        elif args.command == "evaluate":
            if args.model:
                result = api.evaluate(
                    args.model,
                    args.backbone,
                    num_examples=args.num_examples,
                    seed=args.seed,
                    **place,
                )
            else:
                result = api.evaluate_retrieval(args.backbone, seed=args.seed, **place)
        else:
            result = api.adapt(
                args.method,
                args.backbone,
                method_config=args.method_config,
                num_examples=args.num_examples,
                seed=args.seed,
                **place,
            )
    except ModuleNotFoundError as err:
        missing = (err.name or "").partition(".")[0]
        if missing not in _EXTRAS:
            raise
        print(
            f"visionkit {args.command}: error: this command needs {missing}, which is not "
            f'installed; install it with: pip install "esmscale[{_EXTRAS[missing]}]"',
            file=sys.stderr,
        )
        return 2
    except (ValueError, KeyError, FileNotFoundError, TypeError) as err:
        print(f"visionkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
