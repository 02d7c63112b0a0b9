"""Probes for ``benchmarks/visionkit.py``: settings where each visionkit method should matter.

Issue 17. Each probe builds a setting where the method's mechanism should have an effect, with a
control where it should not, measures the size of the problem before the method is applied, and
compares the method with its baselines over several seeds (mean +- std and a paired difference per
seed). The methods themselves are the package's (``visionkit.methods``); only data and loops live
here.

- :func:`tta_sweep`: invariant TTA vs TPT vs zero-shot on a balanced shifted shapes split, for
  backbones pre-trained with a background shortcut of strength 0.25 (none: the control), 0.5,
  0.8 and 0.95.
- :func:`mope_sweep`: MoPE vs deep prompt tuning vs late fusion (equal trainable parameters) on a
  task where each sample is decided by the image, by the caption, or by both (instance-dependent,
  complementary), with test-time modality dropout, at 100, 1,000 and all training pairs.
- :func:`uit_probe`: UIT's losses added one at a time, fine-tuned on a small set with noisy and
  partial captions; tested on clean, noisy/partial and unseen-attribute splits.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionkit import api
from visionkit.backbones import ClipBackbone, TinyClipConfig
from visionkit.datasets import SHAPES, make_persons, make_shapes
from visionkit.datasets.persons import WORDS as PERSON_WORDS
from visionkit.datasets.persons import identity_attributes
from visionkit.datasets.shapes import BACKGROUNDS, COLOURS
from visionkit.methods import TEST_TIME, TRAINED
from visionkit.methods.base import config_from_dict
from visionkit.methods.context import ContextClassifier
from visionkit.methods.invariant_tta import InvariantTTAConfig, auxiliary_views
from visionkit.methods.late_fusion import matched_hidden
from visionkit.methods.mope import MoPEConfig, mope_parameter_count
from visionkit.methods.prompt_tuning import matched_prompt_length
from visionkit.methods.uit import UIT, UITConfig
from visionkit.metrics import accuracy, retrieval_metrics, worst_group_accuracy
from visionkit.training import TrainConfig, fit, pretrain_contrastive

PROBE_SETTINGS: dict[str, dict[str, Any]] = {
    # two strengths (the MoPE probe reuses the 0.25 backbone), small sizes: a path check
    "quick": {
        "strengths": [0.25, 0.95],
        "pretrain_steps": 120,
        "pretrain_batch": 64,
        "num_shapes": 1000,
        "persons_pretrain_steps": 100,
        "persons_num_shapes": 500,
        "num_persons": 60,
        "mope_strength": 0.25,
        "tta_per_group": 1,
        "tpt_views": 16,
        "mope_sizes": [100, 1000],
        "mope_steps": 20,
        "mope_batch": 32,
        "mope_test": 200,
        "mope_noise": [0.0, 0.5],
        "uit_ids": 20,
        "uit_images": 4,
        "uit_steps": 10,
        "uit_test_ids": 40,
        "caption_noise": 0.15,
        "caption_partial": 0.5,
    },
    "full": {
        "strengths": [0.25, 0.5, 0.8, 0.95],
        "pretrain_steps": 800,
        "pretrain_batch": 128,
        "num_shapes": 6000,
        "persons_pretrain_steps": 400,
        "persons_num_shapes": 1000,
        "num_persons": 200,
        "mope_strength": 0.25,
        "tta_per_group": 6,
        "tpt_views": 32,
        "mope_sizes": [100, 1000, 4000],
        "mope_steps": 100,
        "mope_batch": 64,
        "mope_test": 600,
        "mope_noise": [0.0, 0.25, 0.5],
        "uit_ids": 100,
        "uit_images": 4,
        "uit_steps": 60,
        "uit_test_ids": 100,
        "caption_noise": 0.15,
        "caption_partial": 0.5,
    },
}

#: UIT loss sets, each adding one part to the previous (the main benchmark uses them too).
UIT_LOSS_SETS: dict[str, dict[str, bool]] = {
    "baseline": {
        "sdm": False,
        "id_loss": False,
        "triplet": False,
        "restoration": False,
        "text_augmentation": False,
    },
    "sdm": {"id_loss": False, "triplet": False, "restoration": False, "text_augmentation": False},
    "sdm_id": {"triplet": False, "restoration": False, "text_augmentation": False},
    "sdm_id_triplet": {"restoration": False, "text_augmentation": False},
    "sdm_id_triplet_restoration": {"text_augmentation": False},
    "uit": {},
}
#: Top colour held out of UIT fine-tuning (the unseen-attribute split has only this colour).
HELD_OUT_TOP = "purple"
#: Seed offset of the probes' test data (disjoint from training data and the main benchmark).
PROBE_EVAL_OFFSET = 20_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std and the values (std 0 for a single value)."""
    vals = [float(v) for v in values]
    return {
        "mean": statistics.fmean(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "values": vals,
    }


def verdict(method: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Verdict of ``method`` vs ``baseline`` (two :func:`summary` dicts over the same seeds).

    "beats" when mean - std exceeds the baseline's mean + std, "loses" when mean + std is below
    the baseline's mean - std, else "ties". The paired per-seed differences are kept too.

    Examples
    --------
    >>> verdict(summary([0.9, 0.8]), summary([0.1, 0.2]))["verdict"]
    'beats'
    >>> verdict(summary([0.5, 0.6]), summary([0.55, 0.5]))["verdict"]
    'ties'
    """
    a, b = method, baseline
    if a["mean"] - a["std"] > b["mean"] + b["std"]:
        word = "beats"
    elif a["mean"] + a["std"] < b["mean"] - b["std"]:
        word = "loses"
    else:
        word = "ties"
    diffs = [x - y for x, y in zip(a["values"], b["values"], strict=True)]
    return {
        "verdict": word,
        "paired_diff": summary(diffs)
        | {"wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs)},
    }


# --------------------------------------------------------------------------- invariant TTA


def balanced_shifted(per_group: int, seed: int) -> Any:
    """Shifted shapes with exactly ``per_group`` images per (shape, background) group."""
    n_groups = len(SHAPES) * len(BACKGROUNDS)
    data = make_shapes(max(256, 4 * per_group * n_groups), shifted=True, seed=seed)
    picks = []
    for g in range(n_groups):
        idx = (data.groups == g).nonzero().flatten()[:per_group]
        if len(idx) < per_group:
            raise RuntimeError(f"balanced_shifted: group {g} has only {len(idx)} images")
        picks.append(idx)
    return data.subset(torch.cat(picks))


@torch.no_grad()
def background_shortcut_rate(backbone: ClipBackbone, data: Any) -> float:
    """How often zero-shot CLIP names the background's home shape when the shape is erased.

    The shape's pixels are filled with the image's mean background colour; the home shape of
    background ``b`` is shape ``b`` (:func:`visionkit.datasets.shapes.home_background`). Chance
    is ``1 / len(SHAPES)``; 1 means the background alone decides the prediction.
    """
    masks = data.masks[:, None]
    bg_mean = (data.images * ~masks).sum(dim=(2, 3), keepdim=True) / (~masks).sum(
        dim=(2, 3), keepdim=True
    ).clamp(min=1)
    erased = torch.where(masks, bg_mean, data.images)
    pred = ContextClassifier(backbone, SHAPES)(erased).argmax(-1)
    return float((pred == data.backgrounds).float().mean())


#: Backbones pre-trained in this process, by cache key (used when the disk cache is off too).
_BUILT: dict[str, ClipBackbone] = {}


def _cached(cache: Path | None, key: str, build: Callable[[], ClipBackbone]) -> ClipBackbone:
    if key in _BUILT:
        return copy.deepcopy(_BUILT[key])  # a fresh copy, as a load from disk would be
    path = None if cache is None else cache / key
    if path is not None and (path / "config.json").exists():
        log(f"loading backbone {path}")
        return ClipBackbone.from_pretrained(path)
    start = time.perf_counter()
    with torch.enable_grad():  # callers may run under no_grad (tta_diagnostics)
        backbone = build()
    log(f"pre-trained {key} in {time.perf_counter() - start:.0f} s")
    if path is not None:
        backbone.save_pretrained(path)
    _BUILT[key] = copy.deepcopy(backbone)
    return backbone


def shapes_backbone(strength: float, cfg: dict[str, Any], cache: Path | None) -> ClipBackbone:
    """A tiny CLIP pre-trained on shapes only whose background matches the shape's home
    background with probability ``strength`` (seed 0); text context 16 (shape captions are
    short), which makes pre-training about twice as cheap."""

    def build() -> ClipBackbone:
        bb = ClipBackbone.from_config(TinyClipConfig(context_length=16), seed=0)
        data = make_shapes(cfg["num_shapes"], correlation=strength, seed=0)
        train = TrainConfig(steps=cfg["pretrain_steps"], batch_size=cfg["pretrain_batch"], lr=2e-3)
        pretrain_contrastive(bb, data.images, bb.tokenize(list(data.captions)), train)
        return bb

    # the settings are part of the name: a cache built with other sizes is not reused
    key = f"shapes-{strength:g}-{cfg['pretrain_steps']}x{cfg['pretrain_batch']}-{cfg['num_shapes']}"
    return _cached(cache, key, build)


def persons_backbone(cfg: dict[str, Any], cache: Path | None) -> ClipBackbone:
    """The default tiny CLIP pre-trained on shapes (shortcut 0.8) and persons, for UIT."""

    def build() -> ClipBackbone:
        return api.pretrain(
            config=TinyClipConfig(),
            train=TrainConfig(
                steps=cfg["persons_pretrain_steps"], batch_size=cfg["pretrain_batch"], lr=2e-3
            ),
            num_shapes=cfg["persons_num_shapes"],
            num_persons=cfg["num_persons"],
            seed=0,
        )

    key = (
        f"persons-{cfg['persons_pretrain_steps']}x{cfg['pretrain_batch']}"
        f"-{cfg['persons_num_shapes']}-{cfg['num_persons']}"
    )
    return _cached(cache, key, build)


@torch.no_grad()
def tta_diagnostics(cfg: dict[str, Any], seeds: list[int], cache: Path | None) -> dict[str, Any]:
    """Why test-time context tuning can or cannot help, per shortcut strength.

    On the same balanced shifted split as :func:`tta_sweep`, with invariant TTA's own views
    (:func:`~visionkit.methods.invariant_tta.auxiliary_views`): zero-shot accuracy on the
    tightest foreground crop (can the frozen image encoder see the shape at all?) and how often
    zero-shot names the background's home shape on the background-only view.
    """
    out: dict[str, Any] = {}
    views_cfg = InvariantTTAConfig(num_foreground_views=1)
    for strength in cfg["strengths"]:
        bb = shapes_backbone(strength, cfg, cache)
        clf = ContextClassifier(bb, SHAPES)
        crop_acc, home = [], []
        for seed in seeds:
            data = balanced_shifted(cfg["tta_per_group"], seed + PROBE_EVAL_OFFSET)
            views = [
                auxiliary_views(img, m, views_cfg, torch.Generator().manual_seed(seed))
                for img, m in zip(data.images, data.masks, strict=True)
            ]
            fg = torch.stack([v[0][0] for v in views])
            bg = torch.stack([v[1][0] for v in views])
            crop_acc.append(accuracy(clf(fg), data.labels))
            home.append(float((clf(bg).argmax(-1) == data.backgrounds).float().mean()))
        out[f"{strength:g}"] = {
            "zero_shot_foreground_crop_acc": summary(crop_acc),
            "background_view_home_rate": summary(home),
        }
    return out


def tta_sweep(cfg: dict[str, Any], seeds: list[int], cache: Path | None) -> dict[str, Any]:
    """Worst-group and mean accuracy of zero-shot, TPT and invariant TTA per shortcut strength."""
    out: dict[str, Any] = {}
    for strength in cfg["strengths"]:
        bb = shapes_backbone(strength, cfg, cache)
        rows: dict[str, dict[str, list[float]]] = {
            m: {"worst": [], "acc": []} for m in ("zero_shot", "tpt", "invariant_tta")
        }
        in_dist, shortcut = [], []
        for seed in seeds:
            data = balanced_shifted(cfg["tta_per_group"], seed + PROBE_EVAL_OFFSET)
            with torch.no_grad():
                train_like = make_shapes(
                    len(data), correlation=strength, seed=seed + PROBE_EVAL_OFFSET + 1
                )
                in_dist.append(
                    accuracy(ContextClassifier(bb, SHAPES)(train_like.images), train_like.labels)
                )
            shortcut.append(background_shortcut_rate(bb, data))
            for method in rows:
                if method == "zero_shot":
                    with torch.no_grad():
                        logits = ContextClassifier(bb, SHAPES)(data.images)
                else:
                    adapter_cls, config_cls = TEST_TIME[method]
                    overrides = {"num_views": cfg["tpt_views"]} if method == "tpt" else {}
                    adapter = adapter_cls(
                        bb, SHAPES, config_from_dict(config_cls, overrides), seed=seed
                    )
                    logits = adapter.predict(data.images, data.masks)
                rows[method]["worst"].append(worst_group_accuracy(logits, data.labels, data.groups))
                rows[method]["acc"].append(accuracy(logits, data.labels))
            log(
                f"tta shortcut {strength} seed {seed}: worst-group "
                + ", ".join(f"{m} {r['worst'][-1]:.3f}" for m, r in rows.items())
            )
        entry: dict[str, Any] = {
            "zero_shot_in_distribution_acc": summary(in_dist),
            "background_shortcut_rate": summary(shortcut),
        }
        for method, r in rows.items():
            entry[f"{method}_worst_group_acc"] = summary(r["worst"])
            entry[f"{method}_acc"] = summary(r["acc"])
        out[f"{strength:g}"] = entry
    for key, extra in tta_diagnostics(cfg, seeds, cache).items():
        out[key].update(extra)
    return out


# --------------------------------------------------------------------------- MoPE


def complementary_task(n: int, seed: int) -> dict[str, Any]:
    """Shape classification where each sample is decided by the image, the caption or both.

    A third of the samples show the shape and caption only its colour (image decides), a third
    hide the shape (filled with the background's mean colour) and name it in the caption (text
    decides), a third have both. ``source``: 0 both, 1 image only, 2 text only.
    """
    data = make_shapes(n, shifted=True, seed=seed)
    rng = np.random.default_rng([seed, 17])
    source = torch.from_numpy(rng.integers(0, 3, n))
    masks = data.masks[:, None]
    bg_mean = (data.images * ~masks).sum(dim=(2, 3), keepdim=True) / (~masks).sum(
        dim=(2, 3), keepdim=True
    ).clamp(min=1)
    hide = (source == 2)[:, None, None, None] & masks
    images = torch.where(hide, bg_mean, data.images)
    captions = [
        f"a {COLOURS[int(c)]} in the picture" if int(s) == 1 else f"a {COLOURS[int(c)]} {SHAPES[y]}"
        for c, s, y in zip(data.colours, source, data.labels.tolist(), strict=True)
    ]
    return {"images": images, "captions": captions, "labels": data.labels, "source": source}


def drop_modality(task: dict[str, Any], level: float, seed: int) -> dict[str, Any]:
    """Test-time modality dropout: with probability ``level`` a sample loses its image (noise)
    or its caption (empty), each half the time. Also returns the fraction still solvable."""
    n = len(task["captions"])
    rng = np.random.default_rng([seed, 23])
    drop = rng.random(n) < level
    which = rng.integers(0, 2, n)  # 0 drop image, 1 drop caption
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(task["images"].shape, generator=gen)
    drop_img = torch.from_numpy(drop & (which == 0))
    drop_txt = drop & (which == 1)
    images = torch.where(drop_img[:, None, None, None], noise, task["images"])
    captions = ["" if d else c for c, d in zip(task["captions"], drop_txt, strict=True)]
    source = task["source"].numpy()
    lost = (drop_img.numpy() & (source == 1)) | (drop_txt & (source == 2))
    return {
        "images": images,
        "captions": captions,
        "labels": task["labels"],
        "solvable": float(1.0 - lost.mean()),
    }


def mope_sweep(
    backbone: ClipBackbone,
    cfg: dict[str, Any],
    seeds: list[int],
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy of MoPE, prompt tuning and late fusion per training size and test dropout.

    ``late_fusion_linear`` (a linear head on the frozen features, about 260 parameters) is a
    diagnostic: it separates what the MLP head's non-linearity adds from what fusion needs.
    ``names`` restricts the run to some of the methods.
    """
    classes = len(SHAPES)
    dv, dt, n_layers = backbone.vision_width, backbone.text_width, backbone.num_vision_layers
    budget = mope_parameter_count(MoPEConfig(num_classes=classes), dv, dt, n_layers)
    length = matched_prompt_length(budget, classes, dv, dt, n_layers)
    every: dict[str, tuple[str, dict[str, Any]]] = {
        "mope": ("mope", {}),
        "prompt_tuning": ("prompt_tuning", {"prompt_length": length}),
        "late_fusion": ("late_fusion", {"hidden": matched_hidden(budget, classes, dv, dt)}),
        "late_fusion_linear": ("late_fusion", {}),
    }
    methods = {k: v for k, v in every.items() if names is None or k in names}
    acc: dict[tuple[int, float, str], list[float]] = {}
    params: dict[str, int] = {}
    solvable: dict[float, list[float]] = {}
    largest = max(cfg["mope_sizes"])
    for seed in seeds:
        pool = complementary_task(largest, seed)
        tests = {
            level: drop_modality(
                complementary_task(cfg["mope_test"], seed + PROBE_EVAL_OFFSET), level, seed
            )
            for level in cfg["mope_noise"]
        }
        for level, t in tests.items():
            solvable.setdefault(level, []).append(t["solvable"])
        test_ids = {level: backbone.tokenize(t["captions"]) for level, t in tests.items()}
        ids_all = backbone.tokenize(pool["captions"])
        for size in cfg["mope_sizes"]:
            for name, (method, overrides) in methods.items():
                model_cls, config_cls = TRAINED[method]
                config = config_from_dict(config_cls, {"num_classes": classes, **overrides})
                model = model_cls(backbone, config, seed=seed)
                images, labels, ids = pool["images"][:size], pool["labels"][:size], ids_all[:size]

                def loss(
                    idx: torch.Tensor,
                    m: Any = model,
                    x: Any = images,
                    y: Any = labels,
                    t: Any = ids,
                ) -> torch.Tensor:
                    return m.loss(x[idx], t[idx], y[idx])

                model.train()
                train = TrainConfig(
                    steps=cfg["mope_steps"], batch_size=cfg["mope_batch"], lr=3e-3, seed=seed
                )
                fit(list(model.parameters()), loss, size, train)
                model.eval()
                params[name] = model.parameter_count().trainable
                with torch.no_grad():
                    for level, t in tests.items():
                        logits = model.predict(t["images"], test_ids[level])
                        acc.setdefault((size, level, name), []).append(
                            accuracy(logits, t["labels"])
                        )
            log(
                f"mope seed {seed} n={size}: "
                + ", ".join(f"{m} {acc[(size, 0.0, m)][-1]:.3f}" for m in methods)
            )
    out: dict[str, Any] = {"trainable_params": params, "solvable_fraction": {}}
    for level, vals in solvable.items():
        out["solvable_fraction"][f"{level:g}"] = statistics.fmean(vals)
    for (size, level, name), vals in acc.items():
        out.setdefault(f"n={size},noise={level:g}", {})[f"{name}_acc"] = summary(vals)
    return out


# --------------------------------------------------------------------------- UIT


def corrupt_captions(
    captions: Sequence[str], noise: float, partial: float, rng: np.random.Generator
) -> list[str]:
    """Partial and noisy captions.

    With probability ``partial`` a caption keeps only its first clause (clothes), losing hair,
    hat and bag; then every word is replaced with probability ``noise`` by a random caption word.

    Examples
    --------
    >>> corrupt_captions(["a man in a red top . he has short black hair ."], 0.0, 1.0,
    ...                  np.random.default_rng(0))
    ['a man in a red top .']
    """
    vocab = [w for w in PERSON_WORDS if w not in {".", ","}]
    out = []
    for caption in captions:
        text = caption
        if rng.random() < partial:
            for sep in (" . ", " , "):
                if sep in text:
                    text = text.split(sep)[0] + " ."
                    break
        words = text.split(" ")
        words = [
            str(vocab[rng.integers(len(vocab))])
            if w not in {".", ","} and rng.random() < noise
            else w
            for w in words
        ]
        out.append(" ".join(words))
    return out


def _persons_subset(data: Any, keep: torch.Tensor, relabel: bool) -> dict[str, Any]:
    idx = keep.nonzero().flatten()
    ids = data.identities[idx]
    if relabel:
        _, ids = torch.unique(ids, return_inverse=True)
    return {
        "images": data.images[idx],
        "identities": ids,
        "captions": [data.captions[int(i)] for i in idx],
    }


def _top(identity: int) -> str:
    return identity_attributes(identity).top


def persons_split(
    num_ids: int, images: int, offset: int, seed: int, *, held_out: bool, relabel: bool
) -> dict[str, Any]:
    """``num_ids`` identities from ``offset`` on, with (``held_out``) or without the held-out top
    colour."""
    pool = num_ids * 10 if held_out else num_ids * 2
    data = make_persons(pool, images, identity_offset=offset, seed=seed)
    chosen = [i for i in range(offset, offset + pool) if (_top(i) == HELD_OUT_TOP) == held_out][
        :num_ids
    ]
    if len(chosen) < num_ids:
        raise RuntimeError(f"persons_split: only {len(chosen)} identities match")
    keep = torch.isin(data.identities, torch.tensor(chosen))
    return _persons_subset(data, keep, relabel)


@torch.no_grad()
def retrieval(backbone: Any, split: dict[str, Any]) -> dict[str, float]:
    """Text-to-image Rank-1 and mAP with every caption of ``split`` as a query."""
    f = torch.nn.functional.normalize
    text = f(backbone.encode_text(backbone.tokenize(split["captions"])).embeds, dim=-1)
    image = f(backbone.encode_image(split["images"]).embeds, dim=-1)
    m = retrieval_metrics(text @ image.t(), split["identities"], split["identities"])
    return {"rank1": m["rank1"], "mAP": m["mAP"]}


def uit_probe(backbone: ClipBackbone, cfg: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Rank-1 and mAP per UIT loss set on clean, noisy/partial and unseen-attribute test splits."""
    offset = api.TEST_IDENTITY_OFFSET
    scores: dict[tuple[str, str, str], list[float]] = {}
    for seed in seeds:
        rng = np.random.default_rng([seed, 31])
        train = persons_split(
            cfg["uit_ids"], cfg["uit_images"], 0, seed, held_out=False, relabel=True
        )
        train["captions"] = corrupt_captions(
            train["captions"], cfg["caption_noise"], cfg["caption_partial"], rng
        )
        clean = persons_split(
            cfg["uit_test_ids"], 4, offset, seed + PROBE_EVAL_OFFSET, held_out=False, relabel=False
        )
        noisy = dict(clean)
        noisy["captions"] = corrupt_captions(
            clean["captions"], cfg["caption_noise"], cfg["caption_partial"], rng
        )
        unseen = persons_split(
            cfg["uit_test_ids"], 4, offset, seed + PROBE_EVAL_OFFSET, held_out=True, relabel=False
        )
        splits = {"clean": clean, "noisy": noisy, "unseen_attribute": unseen}
        for name in ("pretrained", *UIT_LOSS_SETS):
            if name == "pretrained":
                bb: Any = backbone
            else:
                bb = _finetune(backbone, train, UIT_LOSS_SETS[name], cfg, seed)
            for split_name, split in splits.items():
                for metric, value in retrieval(bb, split).items():
                    scores.setdefault((name, split_name, metric), []).append(value)
            log(
                f"uit[{name}] seed {seed}: rank1 clean {scores[(name, 'clean', 'rank1')][-1]:.3f}"
                f" noisy {scores[(name, 'noisy', 'rank1')][-1]:.3f}"
                f" unseen {scores[(name, 'unseen_attribute', 'rank1')][-1]:.3f}"
            )
    out: dict[str, Any] = {}
    for (name, split_name, metric), vals in scores.items():
        out.setdefault(split_name, {}).setdefault(name, {})[metric] = summary(vals)
    return out


def _finetune(
    backbone: ClipBackbone,
    train: dict[str, Any],
    overrides: dict[str, bool],
    cfg: dict[str, Any],
    seed: int,
) -> Any:
    bb = copy.deepcopy(backbone)
    n_ids = int(train["identities"].max()) + 1
    model = UIT(bb, config_from_dict(UITConfig, {"num_identities": n_ids, **overrides}), seed=seed)
    images, ids, captions = train["images"], train["identities"], train["captions"]

    def loss(idx: torch.Tensor) -> torch.Tensor:
        text = model.augment([captions[int(i)] for i in idx])
        return model.loss(images[idx], bb.tokenize(text), ids[idx])

    model.train()
    fit(
        list(model.parameters()),
        loss,
        len(ids),
        TrainConfig(steps=cfg["uit_steps"], batch_size=64, lr=3e-4, seed=seed),
    )
    model.eval()
    bb.eval()
    return bb


# --------------------------------------------------------------------------- verdicts


def verdicts(results: dict[str, Any]) -> dict[str, Any]:
    """Each method vs each baseline in each setting ("beats", "ties" or "loses")."""
    out: dict[str, Any] = {}
    for strength, e in results.get("tta_sweep", {}).items():
        for base in ("zero_shot", "tpt"):
            out[f"tta/shortcut={strength}/invariant_tta_vs_{base}"] = verdict(
                e["invariant_tta_worst_group_acc"], e[f"{base}_worst_group_acc"]
            )
        out[f"tta/shortcut={strength}/tpt_vs_zero_shot"] = verdict(
            e["tpt_worst_group_acc"], e["zero_shot_worst_group_acc"]
        )
    for setting, e in results.get("mope_sweep", {}).items():
        if not setting.startswith("n="):
            continue
        for base in ("prompt_tuning", "late_fusion"):
            out[f"mope/{setting}/mope_vs_{base}"] = verdict(e["mope_acc"], e[f"{base}_acc"])
    for split, rows in results.get("uit_probe", {}).items():
        previous = "baseline"
        for name in list(UIT_LOSS_SETS)[1:]:
            out[f"uit/{split}/{name}_vs_baseline"] = verdict(
                rows[name]["rank1"], rows["baseline"]["rank1"]
            )
            if previous != "baseline":
                out[f"uit/{split}/{name}_vs_{previous}"] = verdict(
                    rows[name]["rank1"], rows[previous]["rank1"]
                )
            previous = name
    return out


def run_probes(
    quick: bool,
    seeds: list[int],
    only: Sequence[str] = ("tta", "mope", "uit"),
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the probes named in ``only``; return the JSON keys they fill and their timings.

    Pre-trained backbones are saved under ``cache_dir`` (if given) and reused by later calls.
    """
    cfg = PROBE_SETTINGS["quick" if quick else "full"]
    cache = None if cache_dir is None else Path(cache_dir) / ("quick" if quick else "full")
    timings: dict[str, float] = {}
    results: dict[str, Any] = {"probe_settings": cfg, "seeds": seeds}
    steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
        ("tta", "tta_sweep", lambda: tta_sweep(cfg, seeds, cache)),
        (
            "mope",
            "mope_sweep",
            lambda: mope_sweep(shapes_backbone(cfg["mope_strength"], cfg, cache), cfg, seeds),
        ),
        ("uit", "uit_probe", lambda: uit_probe(persons_backbone(cfg, cache), cfg, seeds)),
    ]
    if "mope_diag" in only:
        start = time.perf_counter()
        bb = shapes_backbone(cfg["mope_strength"], cfg, cache)
        results["mope_diagnostics"] = mope_sweep(bb, cfg, seeds, ("late_fusion_linear",))
        timings["probe_mope_diag_s"] = time.perf_counter() - start
    if "tta_diag" in only:
        start = time.perf_counter()
        results["tta_diagnostics"] = tta_diagnostics(cfg, seeds, cache)
        timings["probe_tta_diag_s"] = time.perf_counter() - start
    for name, key, fn in steps:
        if name not in only:
            continue
        start = time.perf_counter()
        results[key] = fn()
        if key == "uit_probe":
            results["uit_noisy"] = results[key]["noisy"]
        timings[f"probe_{name}_s"] = time.perf_counter() - start
        log(f"probe {name} done in {timings[f'probe_{name}_s']:.0f} s")
    results["probe_timings"] = timings
    return results
