"""Zero-shot classification with learnable text context (the CoOp/TPT prompt learner).

Class ``c`` is described by ``<bos> [ctx_1 ... ctx_n] name_c <eos>``: the context vectors start as
the token embeddings of a prompt such as ``"a photo of a"`` (so, untouched, the classifier is the
ordinary zero-shot CLIP classifier) and are the only parameters test-time tuning changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from visionkit.backbones.base import DualEncoder


class ContextClassifier(nn.Module):
    """Zero-shot classifier whose prompt context is a learnable tensor.

    Parameters
    ----------
    backbone : DualEncoder
        Frozen dual encoder.
    class_names : sequence of str
        Names written after the context (e.g. ``["circle", "square"]``).
    init_context : str
        Words whose embeddings initialise the context.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> clf = ContextClassifier(bb, ["circle", "square"])
    >>> tuple(clf.context.shape)
    (4, 64)
    >>> clf(torch.rand(3, 3, 32, 32)).shape
    torch.Size([3, 2])
    """

    class_ids: torch.Tensor
    context_init: torch.Tensor

    def __init__(
        self, backbone: DualEncoder, class_names: Sequence[str], init_context: str = "a photo of a"
    ) -> None:
        super().__init__()
        if len(class_names) < 2:
            raise ValueError(f"ContextClassifier needs at least two class names, got {class_names}")
        self.backbone = backbone
        self.class_names = tuple(class_names)
        self.register_buffer("class_ids", backbone.tokenize(list(self.class_names)))
        ids = backbone.tokenize([init_context])
        n_ctx = int(backbone.eos_positions(ids)[0]) - 1
        if n_ctx < 1:
            raise ValueError(
                f"init_context {init_context!r} has no words to initialise the context"
            )
        with torch.no_grad():
            init = backbone.token_embedding(ids[0, 1 : 1 + n_ctx]).detach().clone()
        self.context = nn.Parameter(init)
        self.register_buffer("context_init", init.clone())

    def reset(self) -> None:
        """Put the context back to its initial value."""
        with torch.no_grad():
            self.context.copy_(self.context_init)

    def class_embeddings(self) -> torch.Tensor:
        """Normalised class text embeddings ``(C, E)`` for the current context."""
        embeds = self.backbone.encode_text(self.class_ids, context=self.context).embeds
        return nn.functional.normalize(embeds, dim=-1)

    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Normalised, frozen image embeddings ``(B, E)``."""
        with torch.no_grad():
            embeds = self.backbone.encode_image(pixel_values).embeds
        return nn.functional.normalize(embeds, dim=-1)

    def logits_from_embeddings(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Scaled cosine logits ``(B, C)`` of precomputed normalised image embeddings."""
        return self.backbone.logit_scale.detach() * image_embeds @ self.class_embeddings().t()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, C)``."""
        return self.logits_from_embeddings(self.image_embeddings(pixel_values))
