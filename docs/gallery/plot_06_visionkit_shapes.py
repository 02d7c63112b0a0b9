"""
visionkit: generated shapes with a background shortcut
======================================================

``visionkit`` adapts CLIP-style dual encoders with prompts (:doc:`/visionkit/index`); every
dataset is generated in code. Its shapes task hides a **spurious shortcut**: in the training
split each shape appears on its "home" background with probability ``correlation``, while the
shifted test split draws backgrounds independently, so a model that learned the background
instead of the shape fails on the rare (shape, background) groups. Worst-group accuracy
measures exactly that.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

import visionkit as vk
from visionkit.datasets import make_shapes
from visionkit.datasets.shapes import BACKGROUNDS, SHAPES

torch.set_num_threads(1)

train = make_shapes(800, correlation=0.8, seed=0)
test = make_shapes(800, shifted=True, seed=1)

fig, axes = plt.subplots(2, 6, figsize=(14, 5.4), layout="constrained")
for row, (split, name) in enumerate([(train, "training split"), (test, "shifted test split")]):
    for col, ax in enumerate(axes[row]):
        ax.imshow(split.images[col].permute(1, 2, 0).numpy())
        ax.set_title(split.captions[col], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(name)
fig.suptitle("generated 32x32 images and their captions")
plt.show()

# %%
# The shortcut, counted
# ---------------------
# Share of each shape's images on each background: concentrated on one background per shape
# in training, uniform in the shifted test split.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for ax, (split, name) in zip(axes, [(train, "training"), (test, "shifted test")], strict=True):
    counts = np.zeros((len(SHAPES), len(BACKGROUNDS)))
    np.add.at(counts, (split.labels.numpy(), split.backgrounds.numpy()), 1)
    share = counts / counts.sum(axis=1, keepdims=True)
    im = ax.imshow(share, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(BACKGROUNDS)), BACKGROUNDS)
    ax.set_yticks(range(len(SHAPES)), SHAPES)
    ax.set(xlabel="background", ylabel="shape (class)", title=f"{name} split")
fig.colorbar(im, ax=axes, label="share of the shape's images (1)")
plt.show()

# %%
# A method on a tiny backbone
# ---------------------------
# MoPE (mixture of prompt experts) trains prompts and a router while the backbone stays
# frozen: the trainable share is small. (A real run first pre-trains the tiny CLIP on these
# data with ``visionkit.pretrain``, 1-4 minutes on 2 cores; see the visionkit pages.)
backbone = vk.ClipBackbone.from_config(vk.TinyClipConfig(vision_layers=2, text_layers=2))
model = vk.MoPE(backbone, vk.MoPEConfig(num_classes=3))
print(model.parameter_count())
ids = backbone.tokenize(list(test.captions[:4]))
print(model(test.images[:4], ids).logits.shape)
