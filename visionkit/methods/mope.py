r"""MoPE: mixture of prompt experts for multimodal fusion on a frozen dual encoder.

Before each prompted vision layer :math:`l` the image tokens get

.. math::

    P_l = [\,S_l;\; \textstyle\sum_k w_{l,k}(x, t)\,E_{l,k};\; M_l\,t\,]

- a static prompt :math:`S_l \in \mathbb{R}^{L_s \times D_v}`,
- a dynamic prompt mixed from :math:`K` expert prompts
  :math:`E_{l,k} \in \mathbb{R}^{L_d \times D_v}`
  with routing weights :math:`w_l = \mathrm{softmax}((\hat q_l^\top k + \epsilon)/\tau)`, where
  :math:`\hat q_l` is the normalised projection :math:`W_l[\bar x_l; t]` of the mean image token
  at that layer and the text feature :math:`t`, :math:`k` are fixed orthonormal expert keys,
  :math:`\tau = 0.1` and :math:`\epsilon` is Gaussian noise in training only,
- a mapped prompt :math:`M_l t \in \mathbb{R}^{L_m \times D_v}` projected from the text feature.

The importance loss is :math:`\lambda\,\mathrm{CV}^2(\sum_b w_{l,b})` averaged over layers
(:math:`\lambda = 0.01`), and a linear fusion head reads ``[image feature; text feature]``.
Only prompts, routers, mappers and the head train.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from visionkit.backbones.base import DualEncoder
from visionkit.methods.base import AdaptedModel, check_labels


@dataclass(frozen=True)
class MoPEConfig:
    """MoPE hyper-parameters (defaults from the paper: prompt length 6, 4 experts, tau 0.1).

    Attributes
    ----------
    num_classes : int
        Classes of the fusion head.
    static_length, dynamic_length, mapped_length : int
        Tokens of the static, dynamic (expert-mixed) and mapped prompt per layer.
    num_experts : int
        Expert prompts per layer (``K``); with ``K = 1`` no router is built.
    router_dim : int
        Dimension of the routing space (at least ``num_experts``).
    temperature : float
        Softmax temperature of the router.
    noise_std : float
        Standard deviation of the Gaussian noise added to routing scores in training.
    importance_weight : float
        Weight of the routing-balance (importance) loss.
    prompt_layers : tuple of int, optional
        Vision layers that get prompts (default: all).
    init_std : float
        Standard deviation of the prompt initialisation.
    """

    num_classes: int
    static_length: int = 6
    dynamic_length: int = 6
    num_experts: int = 4
    mapped_length: int = 1
    router_dim: int = 32
    temperature: float = 0.1
    noise_std: float = 0.1
    importance_weight: float = 0.01
    prompt_layers: tuple[int, ...] | None = None
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.num_classes < 1 or self.num_experts < 1:
            raise ValueError("MoPEConfig: num_classes and num_experts must be positive")
        if min(self.static_length, self.dynamic_length, self.mapped_length) < 0:
            raise ValueError("MoPEConfig: prompt lengths must be non-negative")
        if self.static_length + self.dynamic_length + self.mapped_length == 0:
            raise ValueError("MoPEConfig: at least one prompt length must be positive")
        if self.num_experts > 1 and self.router_dim < self.num_experts:
            raise ValueError(
                f"MoPEConfig: router_dim {self.router_dim} must be >= num_experts "
                f"{self.num_experts} so the expert keys can be orthogonal"
            )
        if self.temperature <= 0:
            raise ValueError(f"MoPEConfig: temperature must be positive, got {self.temperature}")


def mope_parameter_count(
    config: MoPEConfig, vision_width: int, text_width: int, num_layers: int
) -> int:
    r"""Closed-form number of trainable MoPE parameters.

    Per prompted layer: :math:`L_s D_v + K L_d D_v + [K>1](D_v + D_t + 1) d_r + L_m D_v (D_t + 1)`;
    plus the head :math:`(D_v + D_t + 1) C`.

    Examples
    --------
    >>> mope_parameter_count(MoPEConfig(num_classes=2), 64, 64, num_layers=2)
    20674
    """
    layers = len(_layers(config, num_layers))
    dv, dt, k = vision_width, text_width, config.num_experts
    per_layer = config.static_length * dv + k * config.dynamic_length * dv
    if k > 1 and config.dynamic_length > 0:
        per_layer += (dv + dt + 1) * config.router_dim
    per_layer += config.mapped_length * dv * (dt + 1)
    return layers * per_layer + (dv + dt + 1) * config.num_classes


def _layers(config: MoPEConfig, num_layers: int) -> tuple[int, ...]:
    layers = tuple(range(num_layers)) if config.prompt_layers is None else config.prompt_layers
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad or len(set(layers)) != len(layers):
        raise ValueError(
            f"MoPEConfig.prompt_layers {layers} must be distinct indices in [0, {num_layers})"
        )
    return tuple(sorted(layers))


def orthogonal_keys(num_experts: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``(num_experts, dim)`` fixed orthonormal expert keys (rows), from a seeded QR.

    Examples
    --------
    >>> k = orthogonal_keys(4, 8)
    >>> torch.allclose(k @ k.T, torch.eye(4), atol=1e-6)
    True
    """
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, num_experts, generator=gen))
    return q.T.contiguous()


def importance_loss(weights: torch.Tensor) -> torch.Tensor:
    r"""Squared coefficient of variation of the routing mass per expert.

    :math:`\mathrm{CV}^2 = \mathrm{Var}(m) / \mathrm{mean}(m)^2` with :math:`m_k = \sum_b w_{b,k}`;
    zero when every expert receives the same total weight.

    Examples
    --------
    >>> importance_loss(torch.tensor([[0.5, 0.5], [0.5, 0.5]])).item()
    0.0
    >>> round(importance_loss(torch.tensor([[1.0, 0.0], [1.0, 0.0]])).item(), 4)
    1.0
    """
    mass = weights.sum(dim=0)
    if mass.numel() < 2:
        return weights.new_zeros(())
    return mass.var(unbiased=False) / (mass.mean() ** 2 + 1e-10)


@dataclass
class MoPEOutput:
    """Logits, per-layer routing weights ``(B, K)`` and the weighted importance loss."""

    logits: torch.Tensor
    routing: list[torch.Tensor]
    aux_loss: torch.Tensor


class MoPE(AdaptedModel):
    """Mixture of prompt experts on a frozen :class:`DualEncoder`.

    Parameters
    ----------
    backbone : DualEncoder
        Frozen image/text encoder (its parameters are not trained).
    config : MoPEConfig
        Hyper-parameters.
    seed : int
        Seed of the initialisation and the expert keys.

    Examples
    --------
    >>> from visionkit.backbones import ClipBackbone, TinyClipConfig
    >>> bb = ClipBackbone.from_config(TinyClipConfig(vision_layers=1, text_layers=1))
    >>> model = MoPE(bb, MoPEConfig(num_classes=3))
    >>> ids = bb.tokenize(["a red circle", "a blue square"])
    >>> out = model(torch.rand(2, 3, 32, 32), ids)
    >>> tuple(out.logits.shape), tuple(out.routing[0].shape)
    ((2, 3), (2, 4))
    >>> model.parameter_count().trainable == mope_parameter_count(model.config, 64, 64, 1)
    True
    """

    name = "mope"
    keys: torch.Tensor
    router: nn.ModuleList
    mappers: nn.ModuleList

    def __init__(self, backbone: DualEncoder, config: MoPEConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.layers = _layers(config, backbone.num_vision_layers)
        dv, dt = backbone.vision_width, backbone.text_width
        n, k = len(self.layers), config.num_experts
        self.use_router = k > 1 and config.dynamic_length > 0
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.static = nn.Parameter(torch.randn(n, config.static_length, dv) * config.init_std)
            self.experts = nn.Parameter(
                torch.randn(n, k, config.dynamic_length, dv) * config.init_std
            )
            if self.use_router:
                self.router = nn.ModuleList(nn.Linear(dv + dt, config.router_dim) for _ in range(n))
                self.register_buffer("keys", orthogonal_keys(k, config.router_dim, seed))
            if config.mapped_length > 0:
                self.mappers = nn.ModuleList(
                    nn.Linear(dt, config.mapped_length * dv) for _ in range(n)
                )
            self.head = nn.Linear(dv + dt, config.num_classes)

    def text_features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Frozen text feature (end-of-text token, ``(B, D_t)``)."""
        with torch.no_grad():
            return self.backbone.encode_text(input_ids).pooled

    def route(self, layer: int, image_tokens: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Routing weights ``(B, K)`` of the ``layer``-th prompted layer (index into ``layers``)."""
        batch = image_tokens.shape[0]
        if not self.use_router:
            return image_tokens.new_ones(batch, self.config.num_experts)
        pooled = F.layer_norm(image_tokens.mean(dim=1), image_tokens.shape[-1:])
        text_n = F.layer_norm(text, text.shape[-1:])
        query = F.normalize(self.router[layer](torch.cat([pooled, text_n], dim=-1)), dim=-1)
        scores = query @ self.keys.t()
        if self.training and self.config.noise_std > 0:
            scores = scores + self.config.noise_std * torch.randn_like(scores)
        return torch.softmax(scores / self.config.temperature, dim=-1)

    def prompts(
        self, layer: int, image_tokens: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt tokens ``(B, L_s + L_d + L_m, D_v)`` and routing weights for one layer."""
        batch = image_tokens.shape[0]
        weights = self.route(layer, image_tokens, text)
        parts = [self.static[layer].expand(batch, -1, -1)]
        parts.append(torch.einsum("bk,kld->bld", weights, self.experts[layer]))
        if self.config.mapped_length > 0:
            mapped = self.mappers[layer](text).view(batch, self.config.mapped_length, -1)
            parts.append(mapped)
        return torch.cat(parts, dim=1), weights

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> MoPEOutput:
        """Classify image-text pairs."""
        if pixel_values.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"MoPE: {pixel_values.shape[0]} images but {input_ids.shape[0]} captions; pass "
                "one caption per image"
            )
        text = self.text_features(input_ids)
        routing: list[torch.Tensor] = []
        slots = {layer: j for j, layer in enumerate(self.layers)}

        def prompt_fn(i: int, tokens: torch.Tensor) -> torch.Tensor | None:
            if i not in slots:
                return None
            p, w = self.prompts(slots[i], tokens, text)
            routing.append(w)
            return p

        image = self.backbone.encode_image(pixel_values, prompt_fn, prompt_mode="replace").pooled
        logits = self.head(torch.cat([image, text], dim=-1))
        if self.use_router:
            aux = torch.stack([importance_loss(w) for w in routing]).mean()
        else:
            aux = logits.new_zeros(())
        return MoPEOutput(logits, routing, self.config.importance_weight * aux)

    def loss(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy plus the weighted importance loss."""
        check_labels(labels, self.config.num_classes, "MoPE.loss")
        out = self(pixel_values, input_ids)
        return F.cross_entropy(out.logits, labels) + out.aux_loss

    def predict(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Class logits (no routing noise: call in eval mode)."""
        return self(pixel_values, input_ids).logits
