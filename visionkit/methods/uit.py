r"""UIT: fine-tuning a CLIP dual encoder for text-to-person retrieval.

With normalised image and text embeddings :math:`v_i, t_j`, similarities
:math:`s_{ij} = v_i^\top t_j`
and identity labels :math:`y`, the losses are

- similarity-distribution matching (SDM):
  :math:`\frac{1}{B}\sum_i \mathrm{KL}(p_i \| q_i)` for both directions, with
  :math:`p_{ij} = \mathrm{softmax}_j(s_{ij}/\tau)` and
  :math:`q_{ij} = [y_i = y_j] / \sum_k [y_i = y_k]`;
- identity (ID) loss: cross-entropy of a shared linear classifier on :math:`v_i` and :math:`t_i`;
- cross-modal triplet loss with the hardest different-identity negative:
  :math:`[\alpha - s_{ii} + \max_{j: y_j \ne y_i} s_{ij}]_+` plus the text-to-image direction,
  margin :math:`\alpha = 0.05`;
- text-guided image restoration: the image is turned grey, 70 % of its patches are blanked, the
  image tower encodes it and a decoder (self-attention over patches, cross-attention to the text
  tokens) predicts the RGB pixels of every patch; the mean squared error counts masked patches
  only;
- caption augmentation (data side): with probability 0.2 a caption keeps only its nouns,
  adjectives and pronouns (:func:`visionkit.text_augment.augment_captions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from visionkit.augment import to_grayscale
from visionkit.backbones.base import DualEncoder
from visionkit.methods.base import AdaptedModel, check_labels
from visionkit.text_augment import Tagger, augment_captions


@dataclass(frozen=True)
class UITConfig:
    r"""Loss switches and hyper-parameters (paper: margin 0.05, 70 % masking, augment p = 0.2).

    Attributes
    ----------
    num_identities : int
        Training identities (ID-loss classes).
    sdm, id_loss, triplet, restoration, text_augmentation : bool
        Which parts are on.
    triplet_margin, mask_ratio, augment_prob : float
        Triplet margin (cosine units), fraction of masked patches, caption-augmentation rate.
    sdm_temperature : float
        Temperature :math:`\tau` of the SDM softmax.
    sdm_weight, id_weight, triplet_weight, restoration_weight : float
        Loss weights.
    decoder_width, decoder_layers, decoder_heads : int
        Restoration decoder size.
    finetune_backbone : bool
        Train the backbone (UIT fine-tunes CLIP); false keeps it frozen.
    """

    num_identities: int
    sdm: bool = True
    id_loss: bool = True
    triplet: bool = True
    restoration: bool = True
    text_augmentation: bool = True
    triplet_margin: float = 0.05
    mask_ratio: float = 0.7
    augment_prob: float = 0.2
    sdm_temperature: float = 0.02
    sdm_weight: float = 1.0
    id_weight: float = 1.0
    triplet_weight: float = 1.0
    restoration_weight: float = 1.0
    decoder_width: int = 64
    decoder_layers: int = 1
    decoder_heads: int = 4
    finetune_backbone: bool = True

    def __post_init__(self) -> None:
        if self.num_identities < 1:
            raise ValueError(
                f"UITConfig: num_identities must be positive, got {self.num_identities}"
            )
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"UITConfig: mask_ratio must lie in (0, 1), got {self.mask_ratio}")
        if self.decoder_width % self.decoder_heads:
            raise ValueError("UITConfig: decoder_width must be divisible by decoder_heads")


def _cosine(image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    return F.normalize(image_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).t()


def triplet_loss(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, ids: torch.Tensor, margin: float = 0.05
) -> torch.Tensor:
    """Bidirectional cross-modal triplet loss with the hardest different-identity negative.

    Pair ``i`` (image ``i``, text ``i``) is the positive. Anchors without any different-identity
    item in the batch are ignored.

    Examples
    --------
    >>> e = torch.eye(2)
    >>> triplet_loss(e, e, torch.tensor([0, 1]), margin=0.05).item()  # s_ii = 1, negatives 0
    0.0
    >>> round(triplet_loss(e, e.flip(0), torch.tensor([0, 1]), margin=0.05).item(), 4)
    2.1
    """
    sim = _cosine(image_embeds, text_embeds)
    pos = sim.diagonal()
    different = ids[:, None] != ids[None, :]
    neg_inf = torch.finfo(sim.dtype).min
    hard_i2t = sim.masked_fill(~different, neg_inf).max(dim=1).values
    hard_t2i = sim.masked_fill(~different, neg_inf).max(dim=0).values
    valid = different.any(dim=1)
    if not bool(valid.any()):
        return sim.new_zeros(())
    i2t = F.relu(margin - pos + hard_i2t)[valid].mean()
    t2i = F.relu(margin - pos + hard_t2i)[valid].mean()
    return i2t + t2i


def sdm_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    ids: torch.Tensor,
    temperature: float = 0.02,
) -> torch.Tensor:
    """Similarity-distribution matching: KL from the predicted to the identity-match distribution.

    Examples
    --------
    >>> e = torch.eye(3)
    >>> sdm_loss(e, e, torch.tensor([0, 1, 2])).item() < 1e-6
    True
    """
    sim = _cosine(image_embeds, text_embeds) / temperature
    match = (ids[:, None] == ids[None, :]).float()
    q = match / match.sum(dim=1, keepdim=True)
    log_q = torch.log(q + 1e-8)
    total = sim.new_zeros(())
    for logits in (sim, sim.t()):
        logp = F.log_softmax(logits, dim=1)
        total = total + (logp.exp() * (logp - log_q)).sum(dim=1).mean()
    return total


def identity_loss(
    classifier: nn.Module, image_embeds: torch.Tensor, text_embeds: torch.Tensor, ids: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of a shared identity classifier on both modalities."""
    return F.cross_entropy(classifier(image_embeds), ids) + F.cross_entropy(
        classifier(text_embeds), ids
    )


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, N, p * p * C)`` row-major patches.

    Examples
    --------
    >>> patchify(torch.zeros(2, 3, 8, 8), 4).shape
    torch.Size([2, 4, 48])
    """
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify` for square images.

    Examples
    --------
    >>> x = torch.rand(2, 3, 8, 8)
    >>> torch.equal(unpatchify(patchify(x, 4), 4), x)
    True
    """
    b, n, _ = patches.shape
    side = round(n**0.5)
    if side * side != n:
        raise ValueError(f"unpatchify: {n} patches do not form a square grid")
    p = patch_size
    x = patches.reshape(b, side, side, p, p, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, side * p, side * p)


def random_patch_mask(
    batch: int, num_patches: int, ratio: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(B, N)`` boolean masks with exactly ``round(ratio * N)`` masked patches per row."""
    k = round(ratio * num_patches)
    order = torch.rand(batch, num_patches, generator=generator).argsort(dim=1)
    mask = torch.zeros(batch, num_patches, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], True)
    return mask


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over masked patches only (``pred``/``target``: ``(B, N, P)``).

    Examples
    --------
    >>> t = torch.zeros(1, 2, 3)
    >>> p = torch.tensor([[[1.0, 1.0, 1.0], [5.0, 5.0, 5.0]]])
    >>> masked_patch_loss(p, t, torch.tensor([[True, False]])).item()
    1.0
    """
    per_patch = ((pred - target) ** 2).mean(dim=-1)
    m = mask.to(per_patch.dtype)
    return (per_patch * m).sum() / m.sum().clamp(min=1.0)


class RestorationDecoder(nn.Module):
    """Transformer decoder from masked-image patch tokens, cross-attending to text tokens.

    Examples
    --------
    >>> dec = RestorationDecoder(64, 64, patch_size=8, num_patches=16, width=32, heads=4)
    >>> dec(torch.rand(2, 16, 64), torch.rand(2, 5, 64)).shape
    torch.Size([2, 16, 192])
    """

    def __init__(
        self,
        vision_width: int,
        text_width: int,
        *,
        patch_size: int,
        num_patches: int,
        channels: int = 3,
        width: int = 64,
        layers: int = 1,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.image_in = nn.Linear(vision_width, width)
        self.text_in = nn.Linear(text_width, width)
        self.position = nn.Parameter(torch.randn(1, num_patches, width) * 0.02)
        layer = nn.TransformerDecoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, patch_size * patch_size * channels)

    def forward(
        self,
        patch_tokens: torch.Tensor,
        text_tokens: torch.Tensor,
        text_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted pixels ``(B, N, p * p * C)`` of every patch."""
        x = self.image_in(patch_tokens) + self.position
        memory = self.text_in(text_tokens)
        x = self.blocks(x, memory, memory_key_padding_mask=text_padding)
        return self.out(self.norm(x))


class UIT(AdaptedModel):
    """CLIP fine-tuning for text-to-person retrieval with the UIT losses.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> model = UIT(bb, UITConfig(num_identities=3))
    >>> ids = bb.tokenize(["a", "b", "c"])
    >>> losses = model.losses(torch.rand(3, 3, 32, 32), ids, torch.arange(3))
    >>> sorted(losses)
    ['id', 'restoration', 'sdm', 'total', 'triplet']
    """

    name = "uit"

    def __init__(self, backbone: DualEncoder, config: UITConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        if config.finetune_backbone:
            backbone.unfreeze()
        grid = backbone.image_size // backbone.patch_size
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            if config.id_loss:
                self.id_classifier = nn.Linear(backbone.embed_dim, config.num_identities)
            if config.restoration:
                self.decoder = RestorationDecoder(
                    backbone.vision_width,
                    backbone.text_width,
                    patch_size=backbone.patch_size,
                    num_patches=grid * grid,
                    channels=backbone.num_channels,
                    width=config.decoder_width,
                    layers=config.decoder_layers,
                    heads=config.decoder_heads,
                )
        self._generator = torch.Generator().manual_seed(seed)
        self._rng = np.random.default_rng(seed)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything, backbone included, when the backbone is fine-tuned."""
        if self.config.finetune_backbone:
            return {k: v.detach().clone() for k, v in self.state_dict().items()}
        return super().trainable_state_dict()

    def augment(self, captions: Sequence[str], tagger: Tagger | None = None) -> list[str]:
        """Caption augmentation (identity if ``text_augmentation`` is off)."""
        if not self.config.text_augmentation:
            return list(captions)
        return augment_captions(captions, self.config.augment_prob, tagger=tagger, rng=self._rng)

    def restoration_loss(
        self,
        pixel_values: torch.Tensor,
        text_tokens: torch.Tensor,
        text_padding: torch.Tensor | None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Text-guided restoration of grey, patch-masked images (loss on masked patches)."""
        p = self.backbone.patch_size
        target = patchify(pixel_values, p)
        b, n, _ = target.shape
        if mask is None:
            # drawn on the CPU (the generator's device), so the masks do not depend on the device
            mask = random_patch_mask(b, n, self.config.mask_ratio, self._generator)
        mask = mask.to(pixel_values.device)
        grey = patchify(to_grayscale(pixel_values), p)
        masked = unpatchify(grey.masked_fill(mask[:, :, None], 0.0), p, pixel_values.shape[1])
        tokens = self.backbone.encode_image(masked).tokens[:, 1:]
        pred = self.decoder(tokens, text_tokens, text_padding)
        return masked_patch_loss(pred, target, mask)

    def losses(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, identities: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """All enabled loss terms (weighted) and their sum under ``"total"``."""
        check_labels(identities, self.config.num_identities, "UIT.losses")
        if not (pixel_values.shape[0] == input_ids.shape[0] == identities.shape[0]):
            raise ValueError(
                f"UIT: {pixel_values.shape[0]} images, {input_ids.shape[0]} captions and "
                f"{identities.shape[0]} identities; pass one caption and identity per image"
            )
        cfg = self.config
        image = self.backbone.encode_image(pixel_values)
        text = self.backbone.encode_text(input_ids)
        out: dict[str, torch.Tensor] = {}
        if cfg.sdm:
            out["sdm"] = cfg.sdm_weight * sdm_loss(
                image.embeds, text.embeds, identities, cfg.sdm_temperature
            )
        if cfg.id_loss:
            out["id"] = cfg.id_weight * identity_loss(
                self.id_classifier, image.embeds, text.embeds, identities
            )
        if cfg.triplet:
            out["triplet"] = cfg.triplet_weight * triplet_loss(
                image.embeds, text.embeds, identities, cfg.triplet_margin
            )
        if cfg.restoration:
            eos = self.backbone.eos_positions(input_ids)
            positions = torch.arange(text.tokens.shape[1], device=eos.device)[None]
            # tokens after <eos> are padding (context vectors are not used here)
            padding = positions > eos[:, None]
            out["restoration"] = cfg.restoration_weight * self.restoration_loss(
                pixel_values, text.tokens, padding
            )
        if not out:
            # no loss switched on: plain CLIP contrastive loss keeps training meaningful
            logits = self.backbone.similarity(image.embeds, text.embeds)
            target = torch.arange(logits.shape[0], device=logits.device)
            out["contrastive"] = (
                F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)
            ) / 2
        out["total"] = torch.stack(list(out.values())).sum()
        return out

    def loss(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, identities: torch.Tensor
    ) -> torch.Tensor:
        """Sum of the enabled losses."""
        return self.losses(pixel_values, input_ids, identities)["total"]

    @torch.no_grad()
    def similarity(self, input_ids: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """Cosine similarity ``(texts, images)`` for retrieval."""
        text = self.backbone.encode_text(input_ids).embeds
        image = self.backbone.encode_image(pixel_values).embeds
        return _cosine(text, image)
