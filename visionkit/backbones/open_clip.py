"""Optional ``open_clip`` backbone with the same prompt hooks as :class:`ClipBackbone`.

``open_clip`` is an optional extra (``pip install visionkit[open_clip]``): it needs torchvision,
which does not import beside some CPU-only torch builds. Weights are read from a local checkpoint
file only. The towers are driven by hand exactly like open_clip's own ``forward`` (class token,
positional embedding, ``ln_pre``, residual blocks, pooling, ``ln_post``, projection; text:
token and positional embedding, causal blocks, ``ln_final``, end-of-text pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionkit.backbones.base import (
    DualEncoder,
    PromptMode,
    TextOutput,
    VisionOutput,
    VisionPrompts,
)

_INSTALL_HINT = (
    "open_clip is not installed; install the optional extra with `pip install open_clip_torch` "
    "(it needs a torchvision that imports beside your torch), or use ClipBackbone"
)


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from err
    return open_clip


def _pair(value: Any) -> int:
    if isinstance(value, (tuple, list)):
        if value[0] != value[1]:
            raise ValueError(f"only square images are supported, got size {tuple(value)}")
        return int(value[0])
    return int(value)


class OpenClipBackbone(DualEncoder):
    """An ``open_clip`` CLIP model (ViT image tower) with prompt hooks, frozen by default.

    Parameters
    ----------
    model : open_clip.CLIP
        A model with a ``VisionTransformer`` image tower.
    tokenizer : callable
        ``tokenizer(list_of_str) -> (B, L)`` ids, e.g. ``open_clip.get_tokenizer(name)``.
    freeze : bool
        Freeze every backbone parameter (default).

    Examples
    --------
    >>> bb = OpenClipBackbone.from_config("ViT-B-32")  # doctest: +SKIP
    >>> bb.encode_image(torch.rand(1, 3, 224, 224)).embeds.shape  # doctest: +SKIP
    torch.Size([1, 512])
    """

    model: Any
    text: Any

    def __init__(self, model: nn.Module, tokenizer: Any, *, freeze: bool = True) -> None:
        super().__init__()
        visual = getattr(model, "visual", None)
        needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer")
        if visual is None or any(not hasattr(visual, a) for a in needed):
            raise TypeError(
                f"OpenClipBackbone: {type(model).__name__}.visual is not an open_clip "
                f"VisionTransformer (needs {needed}); ModifiedResNet and timm towers have no "
                "token sequence to prompt"
            )
        text = getattr(model, "text", model)
        for attr in ("token_embedding", "positional_embedding", "transformer", "ln_final"):
            if not hasattr(text, attr):
                raise TypeError(
                    f"OpenClipBackbone: the text tower of {type(model).__name__} lacks {attr!r}; "
                    "only open_clip's CLIP text transformer is supported"
                )
        self.model = model
        self.text = text
        self._tokenizer = tokenizer
        self.image_size = _pair(visual.image_size)
        self.patch_size = _pair(visual.patch_size)
        self.num_channels = int(visual.conv1.in_channels)
        self.vision_width = int(visual.conv1.out_channels)
        self.text_width = int(self.text.token_embedding.weight.shape[1])
        self.num_vision_layers = len(visual.transformer.resblocks)
        self.num_text_layers = len(self.text.transformer.resblocks)
        self.context_length = int(self.text.positional_embedding.shape[0])
        proj = getattr(visual, "proj", None)
        self.embed_dim = int(proj.shape[1]) if proj is not None else self.vision_width
        if freeze:
            self.freeze()

    @classmethod
    def from_config(cls, model_name: str, *, freeze: bool = True) -> OpenClipBackbone:
        """A randomly initialised open_clip model (e.g. ``"ViT-B-32"``); nothing is downloaded."""
        open_clip = _import_open_clip()
        model = open_clip.create_model(model_name, pretrained=None)
        model.eval()
        return cls(model, open_clip.get_tokenizer(model_name), freeze=freeze)

    @classmethod
    def from_pretrained(
        cls, model_name: str, checkpoint: str | Path, *, freeze: bool = True
    ) -> OpenClipBackbone:
        """Load local open_clip weights (a ``.safetensors`` or ``.bin`` file); no downloads."""
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"OpenClipBackbone.from_pretrained: {path} is not a local checkpoint file "
                "(downloads are disabled)"
            )
        open_clip = _import_open_clip()
        model = open_clip.create_model(model_name, pretrained=str(path), load_weights_only=True)
        model.eval()
        return cls(model, open_clip.get_tokenizer(model_name), freeze=freeze)

    @property
    def logit_scale(self) -> torch.Tensor:
        """``exp`` of the learnt log temperature, capped at 100."""
        return self.model.logit_scale.exp().clamp(max=100.0)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokenize with the open_clip tokenizer (its context length, end-of-text = max id)."""
        return torch.as_tensor(self._tokenizer(list(texts)), dtype=torch.long)

    def eos_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """open_clip's end-of-text token has the largest id: its position is the argmax."""
        return input_ids.argmax(dim=-1)

    def token_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of ``input_ids``."""
        return self.text.token_embedding(input_ids)

    @staticmethod
    def _run_block(block: nn.Module, x: torch.Tensor, batch_first: bool, mask: Any) -> torch.Tensor:
        if batch_first:
            return block(x, attn_mask=mask)
        return block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)

    def encode_image(
        self,
        pixel_values: torch.Tensor,
        prompts: VisionPrompts | None = None,
        prompt_mode: PromptMode = "replace",
    ) -> VisionOutput:
        """Encode images with optional deep prompts (see :meth:`ClipBackbone.encode_image`)."""
        self.check_images(pixel_values)
        visual = self.model.visual
        x = visual.conv1(pixel_values)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls_tok = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        h = torch.cat([cls_tok, x], dim=1) + visual.positional_embedding.to(x.dtype)
        h = visual.ln_pre(h)
        batch_first = bool(getattr(visual.transformer, "batch_first", False))
        n_prompt = 0
        for i, block in enumerate(visual.transformer.resblocks):
            p: torch.Tensor | None = None
            if prompts is not None:
                if callable(prompts):
                    p = prompts(i, torch.cat([h[:, :1], h[:, 1 + n_prompt :]], dim=1))
                elif i < len(prompts):
                    p = prompts[i]
            if p is not None:
                if p.ndim == 2:
                    p = p.unsqueeze(0).expand(h.shape[0], -1, -1)
                keep = 1 + n_prompt if prompt_mode == "replace" else 1
                h = torch.cat([h[:, :1], p.to(h.dtype), h[:, keep:]], dim=1)
                n_prompt = p.shape[1] if prompt_mode == "replace" else n_prompt + p.shape[1]
            h = self._run_block(block, h, batch_first, None)
        tokens = torch.cat([h[:, :1], h[:, 1 + n_prompt :]], dim=1)
        pooled = visual.ln_post(tokens[:, 0])
        embeds = pooled @ visual.proj if getattr(visual, "proj", None) is not None else pooled
        return VisionOutput(embeds=embeds, pooled=pooled, tokens=tokens)

    def encode_text(
        self, input_ids: torch.Tensor, context: torch.Tensor | None = None
    ) -> TextOutput:
        """Encode ids with optional context vectors after the start token."""
        eos = self.eos_positions(input_ids)
        length = int(eos.max()) + 1
        input_ids = input_ids[:, :length]
        x = self.text.token_embedding(input_ids)
        n_ctx = 0
        if context is not None:
            if context.ndim == 2:
                context = context.unsqueeze(0).expand(x.shape[0], -1, -1)
            n_ctx = context.shape[1]
            x = torch.cat([x[:, :1], context.to(x.dtype), x[:, 1:]], dim=1)
        total = x.shape[1]
        if total > self.context_length:
            raise ValueError(
                f"{total} tokens (caption plus {n_ctx} context vectors) exceed the text context "
                f"of {self.context_length}; shorten the captions or the context"
            )
        x = x + self.text.positional_embedding[:total].to(x.dtype)
        mask = torch.full((total, total), float("-inf"), device=x.device).triu(1).to(x.dtype)
        batch_first = bool(getattr(self.text.transformer, "batch_first", False))
        for block in self.text.transformer.resblocks:
            x = self._run_block(block, x, batch_first, mask)
        x = self.text.ln_final(x)
        pooled = x[torch.arange(x.shape[0], device=x.device), eos + n_ctx]
        proj = self.text.text_projection
        if proj is None:
            embeds = pooled
        elif isinstance(proj, nn.Linear):
            embeds = proj(pooled)
        else:
            embeds = pooled @ proj
        return TextOutput(embeds=embeds, pooled=pooled, tokens=x)
