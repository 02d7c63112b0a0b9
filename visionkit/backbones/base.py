"""The dual-encoder interface every backbone implements, and parameter counting."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

#: ``prompt_fn(layer, tokens) -> prompts or None``: called before each vision encoder layer with
#: the current tokens *without* prompt tokens (``(B, 1 + N, D)``, class token first); returns
#: ``(P, D)`` or ``(B, P, D)`` prompt tokens for that layer, or ``None`` to keep the current ones.
PromptFn = Callable[[int, torch.Tensor], torch.Tensor | None]
VisionPrompts = PromptFn | Sequence[torch.Tensor | None]
PromptMode = Literal["replace", "prepend"]


@dataclass(frozen=True)
class ParameterCount:
    """Numbers of trainable and frozen parameters.

    Examples
    --------
    >>> count_parameters(nn.Linear(3, 2))
    ParameterCount(trainable=8, frozen=0)
    """

    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        """All parameters."""
        return self.trainable + self.frozen

    @property
    def trainable_fraction(self) -> float:
        """Trainable share of all parameters (0 for an empty module)."""
        return self.trainable / self.total if self.total else 0.0


def count_parameters(module: nn.Module) -> ParameterCount:
    """Count ``module``'s trainable (``requires_grad``) and frozen parameters (shared ones once)."""
    trainable = frozen = 0
    for p in module.parameters():
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return ParameterCount(trainable=trainable, frozen=frozen)


@dataclass
class VisionOutput:
    """Output of :meth:`DualEncoder.encode_image`.

    Attributes
    ----------
    embeds : torch.Tensor
        ``(B, E)`` projected image embedding (not normalised).
    pooled : torch.Tensor
        ``(B, D_v)`` normalised class-token feature before the projection.
    tokens : torch.Tensor
        ``(B, 1 + N, D_v)`` last hidden states of the class and patch tokens (prompts removed).
    """

    embeds: torch.Tensor
    pooled: torch.Tensor
    tokens: torch.Tensor


@dataclass
class TextOutput:
    """Output of :meth:`DualEncoder.encode_text`.

    Attributes
    ----------
    embeds : torch.Tensor
        ``(B, E)`` projected text embedding (not normalised).
    pooled : torch.Tensor
        ``(B, D_t)`` final-normed feature at the end-of-text token.
    tokens : torch.Tensor
        ``(B, L, D_t)`` final-normed hidden states, context tokens included.
    """

    embeds: torch.Tensor
    pooled: torch.Tensor
    tokens: torch.Tensor


class DualEncoder(nn.Module, abc.ABC):
    """A CLIP-style image/text dual encoder with prompt hooks.

    Subclasses expose the sizes below and implement :meth:`encode_image` (with deep vision
    prompts) and :meth:`encode_text` (with learnable context vectors after the start token).
    The backbone's own weights are frozen by default; methods add their trainable parts around it.
    """

    image_size: int
    num_channels: int
    patch_size: int
    vision_width: int
    text_width: int
    embed_dim: int
    num_vision_layers: int
    num_text_layers: int
    context_length: int

    @abc.abstractmethod
    def encode_image(
        self,
        pixel_values: torch.Tensor,
        prompts: VisionPrompts | None = None,
        prompt_mode: PromptMode = "replace",
    ) -> VisionOutput:
        """Encode images, inserting prompt tokens after the class token per encoder layer."""

    @abc.abstractmethod
    def encode_text(
        self, input_ids: torch.Tensor, context: torch.Tensor | None = None
    ) -> TextOutput:
        """Encode token ids, inserting ``context`` vectors right after the start token."""

    @abc.abstractmethod
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Encode captions as ``(B, context_length)`` int64 ids with the backbone's tokenizer."""

    @abc.abstractmethod
    def eos_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Index of the end-of-text token in each row of ``input_ids``."""

    @abc.abstractmethod
    def token_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of ``input_ids`` (used to initialise context vectors)."""

    @property
    @abc.abstractmethod
    def logit_scale(self) -> torch.Tensor:
        """Temperature of the image-text logits (already exponentiated)."""

    def freeze(self) -> DualEncoder:
        """Make every backbone parameter non-trainable and return ``self``."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def unfreeze(self) -> DualEncoder:
        """Make every backbone parameter trainable (full fine-tuning) and return ``self``."""
        for p in self.parameters():
            p.requires_grad_(True)
        return self

    def parameter_count(self) -> ParameterCount:
        """Trainable and frozen parameters of the backbone."""
        return count_parameters(self)

    def similarity(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Scaled cosine-similarity logits ``(B_image, B_text)``."""
        img = nn.functional.normalize(image_embeds, dim=-1)
        txt = nn.functional.normalize(text_embeds, dim=-1)
        return self.logit_scale * img @ txt.t()

    def check_images(self, pixel_values: torch.Tensor, where: str = "pixel_values") -> None:
        """Raise an error that says how to fix images of the wrong type, rank, size or channels."""
        expected = (self.num_channels, self.image_size, self.image_size)
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            raise TypeError(
                f"{where} must be a floating-point torch.Tensor of shape (batch, "
                f"{', '.join(map(str, expected))}), got {type(pixel_values).__name__}"
                + (
                    f" of dtype {pixel_values.dtype}"
                    if isinstance(pixel_values, torch.Tensor)
                    else ""
                )
            )
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            hint = ""
            if pixel_values.ndim == 3:
                hint = "; add the batch dimension with x.unsqueeze(0)"
            elif pixel_values.ndim == 4 and pixel_values.shape[1] != self.num_channels:
                hint = (
                    f"; the backbone takes {self.num_channels} channels (repeat a grayscale image "
                    "with x.expand(-1, 3, -1, -1) or drop an alpha channel)"
                )
            elif pixel_values.ndim == 4:
                hint = (
                    f"; resize to {self.image_size}x{self.image_size}, e.g. with "
                    "torch.nn.functional.interpolate"
                )
            raise ValueError(
                f"{where} has shape {tuple(pixel_values.shape)} but the vision tower expects "
                f"(batch, {', '.join(map(str, expected))}){hint}"
            )
