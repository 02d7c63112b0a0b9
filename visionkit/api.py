"""High-level API: pre-train a tiny CLIP, train a method, evaluate it, adapt at test time.

Every function generates its data in code (seeded), so a call is reproducible and needs no
download. The CLI (``python -m visionkit``) only parses arguments and calls these functions.

Every function that runs a network takes ``device`` and ``precision`` like esmscale's functions
(resolved by :mod:`esmscale.devices`): the model is on ``device`` while the call runs, batches
are moved there, the forward pass and the loss run under autocast at ``precision`` while the
weights and the optimiser step stay float32, and results (metrics, logits, the trained model)
come back on the CPU as float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from visionkit._device import DeviceLike, autocast, check, on_device, to_device, to_host
from visionkit.backbones.base import DualEncoder
from visionkit.backbones.clip import ClipBackbone, TinyClipConfig
from visionkit.checkpoint import load_method, save_method
from visionkit.datasets import (
    SHAPES,
    make_persons,
    make_shape_entailment,
    make_shapes,
)
from visionkit.methods import TEST_TIME, TRAINED, get_method
from visionkit.methods.base import AdaptedModel, config_from_dict
from visionkit.methods.context import ContextClassifier
from visionkit.methods.uit import UIT
from visionkit.metrics import accuracy, retrieval_metrics, worst_group_accuracy
from visionkit.training import TrainConfig, fit, pretrain_contrastive

#: Identity offset of the person-retrieval test split (disjoint from training identities).
TEST_IDENTITY_OFFSET = 4000
#: Seed offset of evaluation data, so evaluation never sees training images.
EVAL_SEED_OFFSET = 10_000


def load_backbone(source: str | Path | DualEncoder) -> DualEncoder:
    """Return ``source`` if it is a backbone, else load a :class:`ClipBackbone` from a directory.

    Examples
    --------
    >>> import tempfile
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> load_backbone(bb) is bb
    True
    >>> folder = tempfile.mkdtemp()
    >>> _ = bb.save_pretrained(folder)
    >>> type(load_backbone(folder)).__name__
    'ClipBackbone'
    """
    if isinstance(source, DualEncoder):
        return source
    return ClipBackbone.from_pretrained(source)


def pretrain(
    out: str | Path | None = None,
    *,
    config: TinyClipConfig | None = None,
    train: TrainConfig | None = None,
    num_shapes: int = 6000,
    num_persons: int = 300,
    images_per_person: int = 8,
    correlation: float = 0.8,
    seed: int = 0,
    device: DeviceLike = "cpu",
    precision: str = "fp32",
) -> ClipBackbone:
    """Pre-train a tiny CLIP contrastively on generated shapes and persons; save it to ``out``.

    The shapes' training split has a background shortcut (``correlation``), which later tasks
    probe. Person identities ``[0, num_persons)`` are used; the retrieval test split starts at
    :data:`TEST_IDENTITY_OFFSET`.

    Parameters
    ----------
    out : str or Path, optional
        Directory the backbone is saved to (``config.json``, ``model.safetensors``,
        ``vocab.json``).
    config : TinyClipConfig, optional
        Architecture (default: :class:`TinyClipConfig`).
    train : TrainConfig, optional
        Optimisation (default: 1500 steps of 128 pairs, lr 2e-3).
    num_shapes, num_persons, images_per_person : int
        Sizes of the generated data.
    correlation : float
        Strength of the shape-background shortcut in the shapes.
    seed : int
        Seed of the weights and the data.
    device : str, torch.device or None
        Where the network runs: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"mps"`` or
        ``"auto"`` (the first accelerator present, else the CPU); see
        :func:`esmscale.devices.resolve_device`. An absent device is an error that lists the
        devices present.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the network (``"fp32"``: none); weights stay float32. fp16 is
        refused on the CPU (use ``"bf16"`` there).

    Returns
    -------
    ClipBackbone
        The frozen backbone, on the CPU.

    Examples
    --------
    >>> bb = pretrain(config=TinyClipConfig(vision_layers=1, text_layers=1),
    ...               train=TrainConfig(steps=2, batch_size=8), num_shapes=16, num_persons=2,
    ...               images_per_person=2)
    >>> bb.parameter_count().trainable
    0
    """
    check(device, precision)
    train = train if train is not None else TrainConfig(steps=1500, batch_size=128, lr=2e-3)
    backbone = ClipBackbone.from_config(config, seed=seed)
    shapes = make_shapes(num_shapes, correlation=correlation, seed=seed)
    persons = make_persons(num_persons, images_per_person, seed=seed)
    images = torch.cat([shapes.images, persons.images])
    input_ids = backbone.tokenize([*shapes.captions, *persons.captions])
    # images of one person share a group so they are not pushed apart as negatives
    groups = torch.cat([-1 - torch.arange(len(shapes)), persons.identities])
    pretrain_contrastive(
        backbone, images, input_ids, train, groups=groups, device=device, precision=precision
    )
    if out is not None:
        backbone.save_pretrained(out)
    return backbone


def _method_config(method: str, overrides: dict[str, Any] | None, defaults: dict[str, Any]) -> Any:
    _, config_cls = get_method(method)
    return config_from_dict(config_cls, {**defaults, **(overrides or {})})


def train(
    method: str,
    backbone: str | Path | DualEncoder,
    *,
    out: str | Path | None = None,
    method_config: dict[str, Any] | None = None,
    train: TrainConfig | None = None,
    num_examples: int = 3000,
    seed: int = 0,
    device: DeviceLike = "cpu",
    precision: str = "fp32",
) -> AdaptedModel:
    """Train ``method`` on its generated task and optionally save it.

    ``mope``, ``prompt_tuning`` and ``late_fusion`` learn shape-caption entailment
    (:func:`~visionkit.datasets.make_shape_entailment`); ``uit`` learns text-to-person retrieval
    on ``num_examples // 8`` identities with 8 images each.

    Parameters
    ----------
    method : str
        One of ``mope``, ``prompt_tuning``, ``late_fusion``, ``uit``.
    backbone : str, Path or DualEncoder
        The backbone or a directory written by :func:`pretrain`.
    out : str or Path, optional
        Directory the trained parts are saved to.
    method_config : dict, optional
        Fields of the method's config.
    train : TrainConfig, optional
        Optimisation settings (default ``TrainConfig(seed=seed)``).
    num_examples : int
        Training examples generated.
    seed : int
        Seed of the data and the method's initialisation.
    device : str, torch.device or None
        Where the network runs: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"mps"`` or
        ``"auto"`` (the first accelerator present, else the CPU); see
        :func:`esmscale.devices.resolve_device`. An absent device is an error that lists the
        devices present.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the network (``"fp32"``: none); weights stay float32. fp16 is
        refused on the CPU (use ``"bf16"`` there).

    Returns
    -------
    AdaptedModel
        The trained model in eval mode, on the CPU (its backbone too).

    Examples
    --------
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> model = train("late_fusion", bb, train=TrainConfig(steps=2, batch_size=8), num_examples=16)
    >>> model.name
    'late_fusion'
    """
    if method not in TRAINED:
        raise KeyError(f"train: {method!r} is not a trained method; choose one of {list(TRAINED)}")
    dev = check(device, precision)
    bb = load_backbone(backbone)
    train = train if train is not None else TrainConfig(seed=seed)
    model_cls, _ = TRAINED[method]
    place: dict[str, Any] = {"device": dev, "precision": precision}
    if method == "uit":
        n_ids = max(2, num_examples // 8)
        persons = make_persons(n_ids, 8, seed=seed)
        config = _method_config(method, method_config, {"num_identities": n_ids})
        uit = UIT(bb, config, seed=seed)
        identities = persons.identities

        def uit_loss(idx: torch.Tensor) -> torch.Tensor:
            captions = uit.augment([persons.captions[int(i)] for i in idx])
            ids = bb.tokenize(captions)
            return uit.loss(
                to_device(persons.images[idx], dev),
                to_device(ids, dev),
                to_device(identities[idx], dev),
            )

        uit.train()
        with on_device(uit, dev, back="cpu"):
            fit(list(uit.parameters()), uit_loss, len(persons), train, **place)
        model: AdaptedModel = uit
    else:
        data = make_shape_entailment(num_examples, seed=seed)
        config = _method_config(method, method_config, {"num_classes": 3})
        model = model_cls(bb, config, seed=seed)
        input_ids = bb.tokenize(data.captions)

        def cls_loss(idx: torch.Tensor) -> torch.Tensor:
            return model.loss(
                to_device(data.images[idx], dev),
                to_device(input_ids[idx], dev),
                to_device(data.labels[idx], dev),
            )

        model.train()
        with on_device(model, dev, back="cpu"):
            fit(list(model.parameters()), cls_loss, len(data), train, **place)
    model.eval()
    bb.eval()
    if out is not None:
        save_method(model, out)
    return model


@torch.no_grad()
def evaluate(
    model: AdaptedModel | str | Path,
    backbone: str | Path | DualEncoder | None = None,
    *,
    num_examples: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
    device: DeviceLike = "cpu",
    precision: str = "fp32",
) -> dict[str, float]:
    """Evaluate a trained method on fresh generated data.

    Classification methods report ``accuracy`` on the entailment task; ``uit`` reports
    ``rank1``, ``rank5``, ``rank10``, ``mAP`` and ``mINP`` on unseen identities.

    Parameters
    ----------
    model : AdaptedModel or path
        A trained model, or a directory written by :func:`train` (then ``backbone`` is needed).
        It is on ``device`` only during the call, then back where it was.
    backbone : str, Path or DualEncoder, optional
        The backbone of a saved model.
    num_examples : int
        Evaluation examples generated (identities: ``num_examples // 4``).
    seed : int
        Seed of the evaluation data (offset from the training data's).
    batch_size : int
        Examples per forward pass.
    device : str, torch.device or None
        Where the network runs: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"mps"`` or
        ``"auto"`` (the first accelerator present, else the CPU); see
        :func:`esmscale.devices.resolve_device`. An absent device is an error that lists the
        devices present.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the network (``"fp32"``: none); weights stay float32. fp16 is
        refused on the CPU (use ``"bf16"`` there).

    Returns
    -------
    dict
        Metric name -> value (Python floats).

    Examples
    --------
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> model = train("late_fusion", bb, train=TrainConfig(steps=2, batch_size=8), num_examples=16)
    >>> sorted(evaluate(model, num_examples=16))
    ['accuracy']
    """
    dev = check(device, precision)
    if not isinstance(model, AdaptedModel):
        if backbone is None:
            raise ValueError("evaluate: loading a saved method needs its backbone (directory)")
        model = load_method(model, load_backbone(backbone))
    model.eval()
    if model.name == "uit":
        assert isinstance(model, UIT)
        return evaluate_retrieval(
            model.backbone,
            num_identities=max(2, num_examples // 4),
            seed=seed,
            device=dev,
            precision=precision,
        )
    data = make_shape_entailment(num_examples, seed=seed + EVAL_SEED_OFFSET)
    input_ids = model.backbone.tokenize(data.captions)
    with on_device(model, dev), autocast(dev, precision):
        logits = torch.cat(
            [
                to_host(
                    model.predict(
                        to_device(data.images[i : i + batch_size], dev),
                        to_device(input_ids[i : i + batch_size], dev),
                    )
                )
                for i in range(0, len(data), batch_size)
            ]
        )
    return {"accuracy": accuracy(logits, data.labels)}


@torch.no_grad()
def evaluate_retrieval(
    backbone: str | Path | DualEncoder,
    *,
    num_identities: int = 250,
    images_per_identity: int = 4,
    seed: int = 0,
    device: DeviceLike = "cpu",
    precision: str = "fp32",
) -> dict[str, float]:
    """Text-to-image retrieval metrics on identities unseen in training.

    Every caption is a query; the gallery holds every image of the test identities. The
    encoders run on ``device`` at ``precision``; the similarities and metrics are computed on
    the CPU in float32.

    Parameters
    ----------
    backbone : str, Path or DualEncoder
        The backbone (on ``device`` only during the call) or a directory written by
        :func:`pretrain`.
    num_identities, images_per_identity : int
        Size of the test gallery.
    seed : int
        Seed of the evaluation data.
    device : str, torch.device or None
        Where the network runs: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"mps"`` or
        ``"auto"`` (the first accelerator present, else the CPU); see
        :func:`esmscale.devices.resolve_device`. An absent device is an error that lists the
        devices present.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the network (``"fp32"``: none); weights stay float32. fp16 is
        refused on the CPU (use ``"bf16"`` there).

    Returns
    -------
    dict
        ``rank1``, ``rank5``, ``rank10``, ``mAP`` and ``mINP``.

    Examples
    --------
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> sorted(evaluate_retrieval(bb, num_identities=4, images_per_identity=2))
    ['mAP', 'mINP', 'rank1', 'rank10', 'rank5']
    """
    dev = check(device, precision)
    bb = load_backbone(backbone)
    data = make_persons(
        num_identities,
        images_per_identity,
        identity_offset=TEST_IDENTITY_OFFSET,
        seed=seed + EVAL_SEED_OFFSET,
    )
    with on_device(bb, dev), autocast(dev, precision):
        text_embeds = to_host(bb.encode_text(to_device(bb.tokenize(data.captions), dev)).embeds)
        image_embeds = to_host(bb.encode_image(to_device(data.images, dev)).embeds)
    text = torch.nn.functional.normalize(text_embeds, dim=-1)
    image = torch.nn.functional.normalize(image_embeds, dim=-1)
    return retrieval_metrics(text @ image.t(), data.identities, data.identities)


def adapt(
    method: str,
    backbone: str | Path | DualEncoder,
    *,
    method_config: dict[str, Any] | None = None,
    num_examples: int = 200,
    seed: int = 0,
    device: DeviceLike = "cpu",
    precision: str = "fp32",
) -> dict[str, float]:
    """Classify the shifted shapes test split with test-time adaptation (or ``"zero_shot"``).

    Returns ``accuracy`` and ``worst_group_accuracy`` (groups: shape x background).

    Parameters
    ----------
    method : str
        ``"zero_shot"``, ``"invariant_tta"`` or ``"tpt"``.
    backbone : str, Path or DualEncoder
        The backbone (never modified; on ``device`` only during the call) or a directory
        written by :func:`pretrain`.
    method_config : dict, optional
        Fields of the method's config.
    num_examples : int
        Test images generated.
    seed : int
        Seed of the test data and the augmentations.
    device : str, torch.device or None
        Where the network runs: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"mps"`` or
        ``"auto"`` (the first accelerator present, else the CPU); see
        :func:`esmscale.devices.resolve_device`. An absent device is an error that lists the
        devices present.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the network (``"fp32"``: none); weights stay float32. fp16 is
        refused on the CPU (use ``"bf16"`` there).

    Examples
    --------
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> sorted(adapt("zero_shot", bb, num_examples=8))
    ['accuracy', 'worst_group_accuracy']
    """
    dev = check(device, precision)
    bb = load_backbone(backbone)
    data = make_shapes(num_examples, shifted=True, seed=seed + EVAL_SEED_OFFSET)
    if method == "zero_shot":
        if method_config:
            raise ValueError("zero_shot takes no method_config")
        clf = ContextClassifier(bb, SHAPES)
        with torch.no_grad(), on_device(clf, dev), autocast(dev, precision):
            logits = to_host(clf(to_device(data.images, dev)))
    elif method in TEST_TIME:
        adapter_cls, config_cls = TEST_TIME[method]
        config = config_from_dict(config_cls, method_config or {})
        adapter = adapter_cls(bb, SHAPES, config, seed=seed, device=dev, precision=precision)
        logits = adapter.predict(data.images, data.masks)
    else:
        raise KeyError(
            f"adapt: unknown method {method!r}; choose zero_shot or one of {list(TEST_TIME)}"
        )
    return {
        "accuracy": accuracy(logits, data.labels),
        "worst_group_accuracy": worst_group_accuracy(logits, data.labels, data.groups),
    }


__all__ = [
    "TinyClipConfig",
    "TrainConfig",
    "adapt",
    "evaluate",
    "evaluate_retrieval",
    "load_backbone",
    "pretrain",
    "train",
]
