"""CLIP dual encoder from ``transformers`` (``CLIPModel``), driven by hand to insert prompts.

The vision tower runs ``embeddings -> pre-layernorm -> encoder layers`` one layer at a time so
that prompt tokens can be inserted after the class token before any layer (deep prompts). The
text tower runs ``token embedding -> (+ context vectors) -> position embedding -> causal encoder
layers -> final norm`` and pools the end-of-text token, as CLIP does.

Weights are read and written only from local directories (``config.json`` +
``model.safetensors`` + the tokenizer's ``vocab.json``); nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from visionkit._torchvision import prepare_torchvision
from visionkit.backbones.base import (
    DualEncoder,
    PromptMode,
    TextOutput,
    VisionOutput,
    VisionPrompts,
)
from visionkit.tokenizer import WordTokenizer

_REQUIRED = (
    "vision_model.embeddings",
    "vision_model.pre_layrnorm",
    "vision_model.encoder.layers",
    "vision_model.post_layernorm",
    "text_model.embeddings",
    "text_model.encoder.layers",
    "text_model.final_layer_norm",
    "visual_projection",
    "text_projection",
    "logit_scale",
)


@dataclass(frozen=True)
class TinyClipConfig:
    """Sizes of a small CLIP model (ViT image tower, causal text tower).

    Examples
    --------
    >>> cfg = TinyClipConfig(vision_layers=1, text_layers=1)
    >>> cfg.to_clip_config().vision_config.num_hidden_layers
    1
    >>> TinyClipConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    image_size: int = 32
    patch_size: int = 8
    num_channels: int = 3
    vision_width: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    context_length: int = 40
    vocab_size: int = 128
    embed_dim: int = 64
    mlp_ratio: int = 2
    logit_scale_init: float = 2.6592

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"TinyClipConfig: image_size {self.image_size} is not a multiple of "
                f"patch_size {self.patch_size}"
            )
        for width, heads, tower in (
            (self.vision_width, self.vision_heads, "vision"),
            (self.text_width, self.text_heads, "text"),
        ):
            if width % heads:
                raise ValueError(
                    f"TinyClipConfig: {tower}_width {width} is not divisible by "
                    f"{tower}_heads {heads}"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TinyClipConfig:
        """Build from a dictionary, rejecting unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"TinyClipConfig: unknown keys {unknown}; valid keys are {sorted(known)}"
            )
        return cls(**values)

    def to_clip_config(self) -> Any:
        """The equivalent ``transformers.CLIPConfig``."""
        prepare_torchvision()
        from transformers import CLIPConfig

        tok = WordTokenizer
        return CLIPConfig(
            text_config={
                "vocab_size": self.vocab_size,
                "hidden_size": self.text_width,
                "intermediate_size": self.text_width * self.mlp_ratio,
                "num_hidden_layers": self.text_layers,
                "num_attention_heads": self.text_heads,
                "max_position_embeddings": self.context_length,
                "pad_token_id": tok.pad_id,
                "bos_token_id": tok.bos_id,
                "eos_token_id": tok.eos_id,
            },
            vision_config={
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "num_channels": self.num_channels,
                "hidden_size": self.vision_width,
                "intermediate_size": self.vision_width * self.mlp_ratio,
                "num_hidden_layers": self.vision_layers,
                "num_attention_heads": self.vision_heads,
            },
            projection_dim=self.embed_dim,
            logit_scale_init_value=self.logit_scale_init,
        )


def _check_transformers() -> None:
    prepare_torchvision()
    import transformers

    major = int(transformers.__version__.split(".")[0])
    if major < 5:
        raise ImportError(
            f"visionkit drives CLIP's encoder layers by hand and needs transformers>=5 (layers "
            f"return tensors, not tuples); found {transformers.__version__}. Upgrade with "
            "`pip install --constraint <(echo torch==$(python -c 'import torch; "
            "print(torch.__version__.split(\"+\")[0])')) 'transformers>=5'`"
        )


def _get(module: nn.Module, dotted: str) -> Any:
    obj: Any = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _causal_mask(length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    mask = torch.full((length, length), torch.finfo(dtype).min, dtype=dtype, device=device)
    return torch.triu(mask, diagonal=1)[None, None]


class ClipBackbone(DualEncoder):
    """A ``transformers`` ``CLIPModel`` with prompt hooks, frozen by default.

    Parameters
    ----------
    model : transformers.CLIPModel
        The wrapped model (any object with CLIP's vision and text towers and projections).
    tokenizer : WordTokenizer, optional
        Tokenizer stored beside the weights; defaults to
        :class:`~visionkit.tokenizer.WordTokenizer`.
    freeze : bool
        Freeze every backbone parameter (default).

    Examples
    --------
    >>> import torch
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> out = bb.encode_image(torch.rand(2, 3, 32, 32), prompts=[torch.zeros(4, 64)])
    >>> tuple(out.embeds.shape), tuple(out.tokens.shape)
    ((2, 64), (2, 17, 64))
    >>> ids = bb.tokenizer.encode(["a red circle"], bb.context_length)
    >>> tuple(bb.encode_text(ids, context=torch.zeros(3, 64)).embeds.shape)
    (1, 64)
    >>> bb.parameter_count().trainable
    0
    """

    model: Any

    def __init__(
        self, model: nn.Module, tokenizer: WordTokenizer | None = None, *, freeze: bool = True
    ) -> None:
        super().__init__()
        _check_transformers()
        missing = []
        for name in _REQUIRED:
            try:
                _get(model, name)
            except AttributeError:
                missing.append(name)
        if missing:
            raise TypeError(
                f"ClipBackbone: {type(model).__name__} lacks {missing}; pass a "
                "transformers.CLIPModel (both towers and both projections), not a "
                "CLIPVisionModel/CLIPTextModel or another architecture"
            )
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else WordTokenizer()
        vcfg = self.model.config.vision_config
        tcfg = self.model.config.text_config
        self.image_size = int(vcfg.image_size)
        self.num_channels = int(vcfg.num_channels)
        self.patch_size = int(vcfg.patch_size)
        self.vision_width = int(vcfg.hidden_size)
        self.text_width = int(tcfg.hidden_size)
        self.embed_dim = int(self.model.config.projection_dim)
        self.num_vision_layers = len(self.model.vision_model.encoder.layers)
        self.num_text_layers = len(self.model.text_model.encoder.layers)
        self.context_length = int(tcfg.max_position_embeddings)
        self.vocab_size = int(tcfg.vocab_size)
        self.eos_token_id = self.tokenizer.eos_id
        if len(self.tokenizer) > self.vocab_size:
            raise ValueError(
                f"ClipBackbone: the tokenizer has {len(self.tokenizer)} tokens but the text "
                f"tower's vocab_size is {self.vocab_size}; build the model with a larger vocab_size"
            )
        if freeze:
            self.freeze()

    # ------------------------------------------------------------------ construction / io
    @classmethod
    def from_config(
        cls,
        config: TinyClipConfig | Any | None = None,
        tokenizer: WordTokenizer | None = None,
        *,
        seed: int | None = 0,
        freeze: bool = True,
    ) -> ClipBackbone:
        """Build a randomly initialised model from a :class:`TinyClipConfig` or ``CLIPConfig``."""
        prepare_torchvision()
        from transformers import CLIPConfig, CLIPModel

        config = TinyClipConfig() if config is None else config
        clip_config = config.to_clip_config() if isinstance(config, TinyClipConfig) else config
        if not isinstance(clip_config, CLIPConfig):
            raise TypeError(
                f"ClipBackbone.from_config expects a TinyClipConfig or transformers.CLIPConfig, "
                f"got {type(config).__name__}"
            )
        if seed is not None:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                model = CLIPModel(clip_config)
        else:
            model = CLIPModel(clip_config)
        model.eval()
        return cls(model, tokenizer, freeze=freeze)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``vocab.json`` into ``directory``."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.model.config.to_json_file(str(path / "config.json"))
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
        self.tokenizer.save(path)
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, freeze: bool = True) -> ClipBackbone:
        """Load a model saved by :meth:`save_pretrained` from a local directory.

        Only local files are read (no hub access). The weights must match ``config.json``
        exactly: missing, unexpected or differently shaped tensors raise an error naming them.
        """
        prepare_torchvision()
        from transformers import CLIPConfig, CLIPModel

        path = Path(directory)
        if not path.is_dir():
            raise FileNotFoundError(
                f"ClipBackbone.from_pretrained: {path} is not a local directory (downloads are "
                "disabled); create one with ClipBackbone.save_pretrained or "
                "`python -m visionkit pretrain --out DIR`"
            )
        for name in ("config.json", "model.safetensors"):
            if not (path / name).is_file():
                raise FileNotFoundError(
                    f"ClipBackbone.from_pretrained: {path / name} is missing; the directory must "
                    "hold config.json and model.safetensors (written by save_pretrained)"
                )
        try:
            config = CLIPConfig.from_json_file(str(path / "config.json"))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ValueError(f"{path / 'config.json'} is not a valid CLIPConfig: {err}") from err
        model = CLIPModel(config)
        state = load_file(str(path / "model.safetensors"))
        expected = model.state_dict()
        problems = [f"missing {k}" for k in expected if k not in state]
        problems += [f"unexpected {k}" for k in state if k not in expected]
        problems += [
            f"{k}: checkpoint {tuple(state[k].shape)} vs config {tuple(v.shape)}"
            for k, v in expected.items()
            if k in state and state[k].shape != v.shape
        ]
        if problems:
            shown = "; ".join(problems[:5]) + (
                f"; ... ({len(problems)} in all)" if len(problems) > 5 else ""
            )
            raise ValueError(
                f"ClipBackbone.from_pretrained: {path / 'model.safetensors'} does not match "
                f"{path / 'config.json'}: {shown}. Save config and weights together with "
                "save_pretrained"
            )
        model.load_state_dict(state, strict=True)
        model.eval()
        tokenizer = WordTokenizer.load(path) if (path / "vocab.json").is_file() else None
        return cls(model, tokenizer, freeze=freeze)

    # ------------------------------------------------------------------ encoders
    @property
    def logit_scale(self) -> torch.Tensor:
        """``exp`` of CLIP's learnt log temperature (capped at 100 as in CLIP)."""
        return self.model.logit_scale.exp().clamp(max=100.0)

    def token_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of ``input_ids`` from the text tower."""
        return self.model.text_model.embeddings.token_embedding(input_ids)

    def encode_image(
        self,
        pixel_values: torch.Tensor,
        prompts: VisionPrompts | None = None,
        prompt_mode: PromptMode = "replace",
    ) -> VisionOutput:
        """Encode images with optional deep prompts.

        Parameters
        ----------
        pixel_values : torch.Tensor
            ``(B, C, H, W)`` images of the backbone's size.
        prompts : sequence or callable, optional
            Either one entry per encoder layer (``None``, ``(P, D)`` or ``(B, P, D)``), or a
            :data:`~visionkit.backbones.base.PromptFn` called before each layer with the tokens
            without prompts.
        prompt_mode : {"replace", "prepend"}
            ``"replace"``: a layer's prompts replace the previous layer's prompt outputs (deep
            prompt tuning, VPT-deep). ``"prepend"``: they are added in front of them.

        Returns
        -------
        VisionOutput
        """
        self.check_images(pixel_values)
        if prompt_mode not in ("replace", "prepend"):
            raise ValueError(f"prompt_mode must be 'replace' or 'prepend', got {prompt_mode!r}")
        layers = self.model.vision_model.encoder.layers
        if prompts is not None and not callable(prompts) and len(prompts) > len(layers):
            raise ValueError(
                f"{len(prompts)} prompt entries given but the vision tower has {len(layers)} "
                "layers; pass at most one entry per layer"
            )
        vm = self.model.vision_model
        h = vm.pre_layrnorm(vm.embeddings(pixel_values))
        batch = h.shape[0]
        n_prompt = 0
        for i, layer in enumerate(layers):
            p: torch.Tensor | None = None
            if prompts is not None:
                if callable(prompts):
                    p = prompts(i, torch.cat([h[:, :1], h[:, 1 + n_prompt :]], dim=1))
                elif i < len(prompts):
                    p = prompts[i]
            if p is not None:
                p = self._batch_prompts(p, batch, self.vision_width, f"vision prompts of layer {i}")
                keep = 1 + n_prompt if prompt_mode == "replace" else 1
                h = torch.cat([h[:, :1], p.to(h.dtype), h[:, keep:]], dim=1)
                n_prompt = p.shape[1] if prompt_mode == "replace" else n_prompt + p.shape[1]
            h = layer(h, None)
        tokens = torch.cat([h[:, :1], h[:, 1 + n_prompt :]], dim=1)
        pooled = vm.post_layernorm(h[:, 0])
        return VisionOutput(
            embeds=self.model.visual_projection(pooled), pooled=pooled, tokens=tokens
        )

    def encode_text(
        self, input_ids: torch.Tensor, context: torch.Tensor | None = None
    ) -> TextOutput:
        """Encode token ids, optionally inserting context vectors after ``<bos>``.

        Parameters
        ----------
        input_ids : torch.Tensor
            ``(B, L)`` int64 ids, each row ``<bos> ... <eos> <pad>...``.
        context : torch.Tensor, optional
            ``(P, D_t)`` or ``(B, P, D_t)`` vectors placed between ``<bos>`` and the words
            (learnable prompt context, as in CoOp/TPT). Trailing padding is dropped first, so
            ``P`` plus the longest caption must fit in ``context_length``.

        Returns
        -------
        TextOutput
        """
        if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2:
            raise ValueError(
                "input_ids must be a (batch, length) int64 tensor from tokenizer.encode, got "
                f"{type(input_ids).__name__} of shape {getattr(input_ids, 'shape', None)}"
            )
        if input_ids.dtype != torch.long:
            raise TypeError(f"input_ids must have dtype torch.int64, got {input_ids.dtype}")
        is_eos = input_ids == self.eos_token_id
        if not bool(is_eos.any(dim=1).all()):
            rows = (~is_eos.any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(
                f"input_ids rows {rows[:5]} have no <eos> (id {self.eos_token_id}); the caption "
                "may have been cut: encode with the backbone's tokenizer and context_length"
            )
        if int(input_ids.max()) >= self.vocab_size or int(input_ids.min()) < 0:
            raise ValueError(
                f"input_ids contain ids outside [0, {self.vocab_size}); use the backbone's "
                "tokenizer"
            )
        eos = self.eos_positions(input_ids)
        length = int(eos.max()) + 1
        input_ids = input_ids[:, :length]
        tm = self.model.text_model
        x = tm.embeddings.token_embedding(input_ids)
        n_ctx = 0
        if context is not None:
            ctx = self._batch_prompts(context, x.shape[0], self.text_width, "text context")
            n_ctx = ctx.shape[1]
            x = torch.cat([x[:, :1], ctx.to(x.dtype), x[:, 1:]], dim=1)
        total = x.shape[1]
        if total > self.context_length:
            raise ValueError(
                f"the longest caption has {length} tokens (with <bos>/<eos>) and {n_ctx} context "
                f"vectors are inserted: {total} > context_length {self.context_length}; shorten "
                "the captions or the context, or build the backbone with a longer context_length"
            )
        positions = torch.arange(total, device=x.device)[None]
        x = x + tm.embeddings.position_embedding(positions)
        mask = _causal_mask(total, x.dtype, x.device)
        for layer in tm.encoder.layers:
            x = layer(x, mask)
        x = tm.final_layer_norm(x)
        pooled = x[torch.arange(x.shape[0], device=x.device), eos + n_ctx]
        return TextOutput(embeds=self.model.text_projection(pooled), pooled=pooled, tokens=x)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Encode captions with the backbone's word tokenizer (errors if one is too long)."""
        return self.tokenizer.encode(texts, self.context_length)

    def eos_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Index of the first ``<eos>`` in each row."""
        return (input_ids == self.eos_token_id).int().argmax(dim=1)

    @staticmethod
    def _batch_prompts(p: torch.Tensor, batch: int, width: int, what: str) -> torch.Tensor:
        if p.ndim == 2:
            p = p.unsqueeze(0).expand(batch, -1, -1)
        if p.ndim != 3 or p.shape[0] != batch or p.shape[2] != width:
            raise ValueError(
                f"{what} have shape {tuple(p.shape)}; expected (P, {width}) or "
                f"({batch}, P, {width})"
            )
        return p
