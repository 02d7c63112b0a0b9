"""Optional ``open_clip`` backbone with the same prompt hooks as :class:`ClipBackbone`.

``open_clip`` is an optional extra (``pip install "esmscale[open-clip]"``). The architecture comes
from open_clip itself (a built-in model name such as ``"ViT-B-32"``, a local JSON config, or a
config dictionary); weights are read only from a local ``.safetensors`` file given by the user.
Nothing is downloaded and pickled checkpoints are refused (convert them once, see
:meth:`OpenClipBackbone.from_pretrained`).

The towers are driven by hand exactly like open_clip's own ``forward`` (class token, positional
embedding, ``ln_pre``, residual blocks, ``ln_post`` on the class token, projection; text: token and
positional embedding, causal blocks, ``ln_final``, end-of-text pooling, projection), so prompt
tokens can be inserted before any vision layer and context vectors after the start token.
Images are taken in ``[0, 1]`` like every visionkit backbone; the model's mean/std normalisation
is applied inside :meth:`OpenClipBackbone.encode_image`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionkit._torchvision import prepare_torchvision
from visionkit.backbones.base import (
    DualEncoder,
    PromptMode,
    TextOutput,
    VisionOutput,
    VisionPrompts,
)

_INSTALL_HINT = (
    "open_clip is not installed; install the optional extra with "
    '`pip install "esmscale[open-clip]"` (open_clip_torch and a torchvision built for your '
    "torch), or use ClipBackbone"
)

#: OpenAI CLIP's image normalisation, used by most open_clip ViT weights.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_CONVERT_HINT = (
    "convert it once to safetensors (needs only torch and safetensors):\n"
    "    import torch; from safetensors.torch import save_file\n"
    "    sd = torch.load('{path}', map_location='cpu', weights_only=True)\n"
    "    save_file({{k.removeprefix('module.'): v.contiguous() for k, v in "
    "sd.get('state_dict', sd).items()}}, '{stem}.safetensors')"
)


def _import_open_clip() -> Any:
    """Import open_clip (after :func:`~visionkit._torchvision.prepare_torchvision`)."""
    prepare_torchvision()
    try:
        import open_clip
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return open_clip


def _pair(value: Any) -> int:
    if isinstance(value, (tuple, list)):
        if value[0] != value[1]:
            raise ValueError(f"only square images are supported, got size {tuple(value)}")
        return int(value[0])
    return int(value)


def _resolve_config(config: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """An open_clip model config dictionary from a built-in name, a JSON file or a mapping."""
    if isinstance(config, Mapping):
        return json.loads(json.dumps(dict(config)))  # deep copy, JSON types only
    text = str(config)
    if text.startswith(("hf-hub:", "http://", "https://")):
        raise ValueError(
            f"OpenClipBackbone: {text!r} would be downloaded; downloads are disabled. Pass a "
            "built-in name (e.g. 'ViT-B-32'), a local open_clip JSON config or a config dict"
        )
    path = Path(text).expanduser()
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"OpenClipBackbone: config file {path} does not exist")
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if "model_cfg" not in loaded:
            return dict(loaded)
        # open_clip_config.json: {"model_cfg": ..., "preprocess_cfg": {"mean": ..., "std": ...}}
        cfg = dict(loaded["model_cfg"])
        pre = loaded.get("preprocess_cfg") or {}
        if "mean" in pre and "std" in pre:
            cfg["_image_mean"], cfg["_image_std"] = pre["mean"], pre["std"]
        return cfg
    open_clip = _import_open_clip()
    found = open_clip.get_model_config(text)
    if found is None:
        names = [n for n in open_clip.list_models() if n.lower().startswith(text[:4].lower())]
        raise KeyError(
            f"OpenClipBackbone: {text!r} is not a built-in open_clip model"
            + (f"; similar names: {names[:8]}" if names else "")
            + "; see open_clip.list_models(), or pass a JSON config file or a config dict"
        )
    return dict(found)


def _check_supported(cfg: dict[str, Any]) -> None:
    """Reject open_clip options the hand-driven towers do not reproduce, naming them."""
    for key in ("embed_dim", "vision_cfg", "text_cfg"):
        if key not in cfg:
            raise ValueError(
                f"OpenClipBackbone: the config lacks {key!r}; an open_clip config has "
                "'embed_dim', 'vision_cfg' and 'text_cfg'"
            )
    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    unsupported = []
    if "multimodal_cfg" in cfg:
        unsupported.append("multimodal_cfg (CoCa)")
    if cfg.get("init_logit_bias") is not None:
        unsupported.append("init_logit_bias (SigLIP-style sigmoid models)")
    if vision.get("timm_model_name"):
        unsupported.append("vision_cfg.timm_model_name (timm image towers)")
    if isinstance(vision.get("layers"), (list, tuple)):
        unsupported.append("vision_cfg.layers as a list (ModifiedResNet image towers)")
    if vision.get("attentional_pool"):
        unsupported.append("vision_cfg.attentional_pool")
    if vision.get("pool_type", "tok") != "tok":
        unsupported.append(f"vision_cfg.pool_type={vision['pool_type']!r}")
    if text.get("hf_model_name") or text.get("hf_tokenizer_name"):
        unsupported.append("text_cfg.hf_model_name/hf_tokenizer_name (Hugging Face text towers)")
    if text.get("pool_type", "argmax") != "argmax":
        unsupported.append(f"text_cfg.pool_type={text['pool_type']!r}")
    if text.get("no_causal_mask"):
        unsupported.append("text_cfg.no_causal_mask")
    if text.get("embed_cls"):
        unsupported.append("text_cfg.embed_cls")
    if unsupported:
        raise ValueError(
            "OpenClipBackbone supports open_clip CLIP models with a ViT image tower and the "
            "built-in causal text tower; this config uses " + ", ".join(unsupported)
        )


def _normalisation(
    cfg: dict[str, Any], mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    """Explicit mean/std first, then an ``open_clip_config.json``'s ``preprocess_cfg``."""
    return (
        mean if mean is not None else cfg.get("_image_mean"),
        std if std is not None else cfg.get("_image_std"),
    )


def _build(cfg: dict[str, Any], seed: int | None) -> tuple[nn.Module, Any]:
    """The open_clip model (random weights) and its tokenizer."""
    open_clip = _import_open_clip()
    _check_supported(cfg)
    cfg = dict(cfg)
    custom_text = bool(cfg.pop("custom_text", False))
    cls = open_clip.model.CustomTextCLIP if custom_text else open_clip.model.CLIP
    cfg.pop("_image_mean", None)
    cfg.pop("_image_std", None)
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        try:
            model = cls(**cfg)
        except TypeError as err:
            raise ValueError(
                f"OpenClipBackbone: open_clip could not build {cls.__name__} from the config "
                f"(keys {sorted(cfg)}): {err}"
            ) from err
    model.eval()
    text_cfg = cfg["text_cfg"]
    tokenizer = open_clip.tokenizer.SimpleTokenizer(
        context_length=int(text_cfg.get("context_length", 77)),
        **(text_cfg.get("tokenizer_kwargs") or {}),
    )
    return model, tokenizer


def _is_pickle(path: Path) -> bool:
    """``torch.save`` zip archives start with ``PK``, bare pickles with the PROTO opcode.

    Only asked after safetensors failed to read the file: a safetensors header length can start
    with the same bytes.
    """
    with path.open("rb") as f:
        head = f.read(4)
    return head.startswith((b"PK\x03\x04", b"\x80"))


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a local ``.safetensors`` state dict; refuse pickled checkpoints with how to convert.

    Examples
    --------
    >>> import tempfile, torch
    >>> from safetensors.torch import save_file
    >>> f = tempfile.mkdtemp() + "/w.safetensors"
    >>> save_file({"a": torch.zeros(2)}, f)
    >>> read_safetensors(f)
    {'a': tensor([0., 0.])}
    """
    from safetensors.torch import load_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} is not a local weights file (downloads are disabled): download the open_clip "
            "weights yourself (open_clip_model.safetensors on the model's Hugging Face page) and "
            "pass the file's path"
        )
    try:
        # safetensors only parses a JSON header and copies raw tensor bytes: nothing is executed
        return load_file(str(file))
    except Exception as err:  # safetensors raises its own error types
        if _is_pickle(file):
            raise ValueError(
                f"{file} is a pickled PyTorch checkpoint; visionkit never unpickles files (a "
                "pickle can run arbitrary code). If you trust it, "
                + _CONVERT_HINT.format(path=file, stem=file.with_suffix(""))
            ) from None
        raise ValueError(
            f"{file} is not a readable safetensors file ({type(err).__name__}: {err}); pass the "
            "open_clip weights in safetensors format"
        ) from err


class OpenClipBackbone(DualEncoder):
    """An ``open_clip`` CLIP model (ViT image tower) with prompt hooks, frozen by default.

    Parameters
    ----------
    model : open_clip.CLIP or open_clip.CustomTextCLIP
        A model with a ``VisionTransformer`` image tower and open_clip's text transformer.
    tokenizer : callable
        ``tokenizer(list_of_str) -> (B, L)`` ids, e.g. ``open_clip.get_tokenizer(name)``.
    freeze : bool
        Freeze every backbone parameter (default).
    image_mean, image_std : sequence of float, optional
        Per-channel normalisation applied to ``[0, 1]`` images inside :meth:`encode_image`
        (default: OpenAI CLIP's, which most open_clip ViT weights use; ``from_config`` and
        ``from_pretrained`` take them from an ``open_clip_config.json``'s ``preprocess_cfg``).

    Examples
    --------
    A small open_clip architecture with random weights (nothing is downloaded):

    >>> cfg = {"embed_dim": 16,
    ...        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1,
    ...                       "head_width": 16},
    ...        "text_cfg": {"context_length": 24, "width": 32, "heads": 2, "layers": 1}}
    >>> bb = OpenClipBackbone.from_config(cfg)
    >>> out = bb.encode_image(torch.rand(2, 3, 32, 32), prompts=[torch.zeros(4, 32)])
    >>> tuple(out.embeds.shape), tuple(out.tokens.shape)
    ((2, 16), (2, 17, 32))
    >>> ids = bb.tokenize(["a photo of a cat"])
    >>> tuple(bb.encode_text(ids, context=torch.zeros(3, 32)).embeds.shape)
    (1, 16)
    >>> bb.parameter_count().trainable
    0
    """

    model: Any
    text: Any
    image_mean: torch.Tensor
    image_std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        freeze: bool = True,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        visual = getattr(model, "visual", None)
        needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer")
        if visual is None or any(not hasattr(visual, a) for a in needed):
            raise TypeError(
                f"OpenClipBackbone: {type(model).__name__}.visual is not an open_clip "
                f"VisionTransformer (needs {needed}); ModifiedResNet and timm towers have no "
                "token sequence to prompt"
            )
        pool_type = getattr(visual, "pool_type", "tok")
        if getattr(visual, "attn_pool", None) is not None or pool_type != "tok":
            raise TypeError(
                "OpenClipBackbone: the image tower pools with an attentional pooler or by "
                "averaging; only class-token pooling (pool_type='tok') is supported"
            )
        text = getattr(model, "text", model)
        for attr in ("token_embedding", "positional_embedding", "transformer", "ln_final"):
            if not hasattr(text, attr):
                raise TypeError(
                    f"OpenClipBackbone: the text tower of {type(model).__name__} lacks {attr!r}; "
                    "only open_clip's CLIP text transformer is supported"
                )
        pool = getattr(text, "text_pool_type", getattr(text, "pool_type", "argmax"))
        if pool != "argmax" or getattr(text, "attn_mask", None) is None:
            raise TypeError(
                "OpenClipBackbone: the text tower must be causal and pool the end-of-text token "
                f"(pool_type 'argmax'); got pool_type {pool!r}"
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
        self.vocab_size = int(self.text.token_embedding.num_embeddings)
        proj = getattr(visual, "proj", None)
        self.embed_dim = int(proj.shape[1]) if proj is not None else self.vision_width
        encoder = getattr(tokenizer, "encoder", None)
        if encoder is not None and len(encoder) > self.vocab_size:
            raise ValueError(
                f"OpenClipBackbone: the tokenizer has {len(encoder)} tokens but the text tower's "
                f"vocab_size is {self.vocab_size}; use the tokenizer the model was trained with"
            )
        mean = torch.tensor(OPENAI_MEAN if image_mean is None else tuple(image_mean))
        std = torch.tensor(OPENAI_STD if image_std is None else tuple(image_std))
        if mean.shape != (self.num_channels,) or std.shape != (self.num_channels,):
            raise ValueError(
                f"OpenClipBackbone: image_mean and image_std need {self.num_channels} values, got "
                f"{tuple(mean.tolist())} and {tuple(std.tolist())}"
            )
        self.register_buffer("image_mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("image_std", std.view(1, -1, 1, 1), persistent=False)
        if freeze:
            self.freeze()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls,
        config: str | Path | Mapping[str, Any],
        *,
        seed: int | None = 0,
        freeze: bool = True,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
    ) -> OpenClipBackbone:
        """A randomly initialised open_clip model; nothing is downloaded.

        Parameters
        ----------
        config : str, path or mapping
            A built-in open_clip model name (``"ViT-B-32"``, see ``open_clip.list_models()``), a
            local open_clip JSON config file, or a config dictionary with ``embed_dim``,
            ``vision_cfg`` and ``text_cfg`` (plus optionally ``quick_gelu``, ``custom_text``).
        seed : int, optional
            Seed of the random initialisation (``None``: the global generator).
        """
        cfg = _resolve_config(config)
        mean, std = _normalisation(cfg, image_mean, image_std)
        model, tokenizer = _build(cfg, seed)
        return cls(model, tokenizer, freeze=freeze, image_mean=mean, image_std=std)

    @classmethod
    def from_pretrained(
        cls,
        config: str | Path | Mapping[str, Any],
        weights: str | Path,
        *,
        freeze: bool = True,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
    ) -> OpenClipBackbone:
        """Build ``config``'s architecture and load local safetensors ``weights`` into it.

        Parameters
        ----------
        config : str, path or mapping
            As in :meth:`from_config`: the architecture the weights were trained with.
        weights : str or path
            A local ``.safetensors`` state dict of that architecture (for example
            ``open_clip_model.safetensors`` from the model's Hugging Face page). Pickled
            checkpoints (``.bin``, ``.pt``) are refused with the three lines that convert them.

        Raises
        ------
        FileNotFoundError
            ``weights`` is not a local file.
        ValueError
            ``weights`` is a pickle or not safetensors, or its tensors do not match the
            architecture (the error names missing, unexpected and differently shaped tensors).
        """
        cfg = _resolve_config(config)
        mean, std = _normalisation(cfg, image_mean, image_std)
        state = read_safetensors(weights)
        model, tokenizer = _build(cfg, seed=0)
        expected = model.state_dict()
        problems = [f"missing {k}" for k in expected if k not in state]
        problems += [f"unexpected {k}" for k in state if k not in expected]
        problems += [
            f"{k}: file {tuple(state[k].shape)} vs config {tuple(v.shape)}"
            for k, v in expected.items()
            if k in state and state[k].shape != v.shape
        ]
        if problems:
            shown = "; ".join(problems[:6]) + (
                f"; ... ({len(problems)} in all)" if len(problems) > 6 else ""
            )
            hint = ""
            if any(k.startswith("module.") for k in state):
                hint = " The file's keys start with 'module.': strip that prefix when converting."
            elif any(k.startswith("text.") for k in state) != any(
                k.startswith("text.") for k in expected
            ):
                hint = (
                    " The text tower is nested under 'text.' in one but not the other: set "
                    "'custom_text' in the config as the weights' model config does."
                )
            raise ValueError(
                f"OpenClipBackbone.from_pretrained: {weights} does not match the config: {shown}."
                f"{hint} Pass the model config the weights were trained with"
            )
        model.load_state_dict(state, strict=True)
        model.eval()
        return cls(model, tokenizer, freeze=freeze, image_mean=mean, image_std=std)

    # ------------------------------------------------------------------ encoders
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

    @staticmethod
    def _batch(p: torch.Tensor, batch: int, width: int, what: str) -> torch.Tensor:
        if (
            p.shape[-1:] != (width,)
            or p.ndim not in (2, 3)
            or (p.ndim == 3 and p.shape[0] != batch)
        ):
            raise ValueError(
                f"{what} have shape {tuple(p.shape)}; expected (P, {width}) or "
                f"({batch}, P, {width})"
            )
        return p.unsqueeze(0).expand(batch, -1, -1) if p.ndim == 2 else p

    def encode_image(
        self,
        pixel_values: torch.Tensor,
        prompts: VisionPrompts | None = None,
        prompt_mode: PromptMode = "replace",
    ) -> VisionOutput:
        """Encode ``[0, 1]`` images with optional deep prompts.

        See :meth:`~visionkit.backbones.ClipBackbone.encode_image` for ``prompts`` and
        ``prompt_mode``; the images are normalised with ``image_mean``/``image_std`` first.
        """
        self.check_images(pixel_values)
        if prompt_mode not in ("replace", "prepend"):
            raise ValueError(f"prompt_mode must be 'replace' or 'prepend', got {prompt_mode!r}")
        visual = self.model.visual
        blocks = visual.transformer.resblocks
        if prompts is not None and not callable(prompts) and len(prompts) > len(blocks):
            raise ValueError(
                f"{len(prompts)} prompt entries given but the vision tower has {len(blocks)} "
                "layers; pass at most one entry per layer"
            )
        x = visual.conv1((pixel_values - self.image_mean) / self.image_std)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls_tok = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        h = torch.cat([cls_tok, x], dim=1) + visual.positional_embedding.to(x.dtype)
        h = visual.ln_pre(h)
        batch_first = bool(getattr(visual.transformer, "batch_first", False))
        n_prompt = 0
        for i, block in enumerate(blocks):
            p: torch.Tensor | None = None
            if prompts is not None:
                if callable(prompts):
                    p = prompts(i, torch.cat([h[:, :1], h[:, 1 + n_prompt :]], dim=1))
                elif i < len(prompts):
                    p = prompts[i]
            if p is not None:
                p = self._batch(p, h.shape[0], self.vision_width, f"vision prompts of layer {i}")
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
        """Encode ids with optional ``(P, D_t)`` or ``(B, P, D_t)`` context after the start."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2:
            raise ValueError(
                "input_ids must be a (batch, length) int64 tensor from tokenize, got "
                f"{type(input_ids).__name__} of shape {getattr(input_ids, 'shape', None)}"
            )
        if int(input_ids.max()) >= self.vocab_size or int(input_ids.min()) < 0:
            raise ValueError(
                f"input_ids contain ids outside [0, {self.vocab_size}); use the backbone's tokenize"
            )
        eos = self.eos_positions(input_ids)
        length = int(eos.max()) + 1
        input_ids = input_ids[:, :length]
        x = self.text.token_embedding(input_ids)
        n_ctx = 0
        if context is not None:
            ctx = self._batch(context, x.shape[0], self.text_width, "text context")
            n_ctx = ctx.shape[1]
            x = torch.cat([x[:, :1], ctx.to(x.dtype), x[:, 1:]], dim=1)
        total = x.shape[1]
        if total > self.context_length:
            raise ValueError(
                f"the longest caption has {length} tokens and {n_ctx} context vectors are "
                f"inserted: {total} > context_length {self.context_length}; shorten the captions "
                "or the context"
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
