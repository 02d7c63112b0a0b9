"""PastNet: a Fourier (physics-guided) branch plus a discrete, vector-quantised branch.

``y = FPG(x) + DST(x)`` for a clip ``x`` of shape ``(B, T_in, C, H, W)`` and a forecast
``y`` of shape ``(B, T_out, C, H, W)`` (Wu et al., arXiv 2305.11421):

- FPG (Fourier-based physics-guided): each frame is cut into ``p x p`` patches embedded as
  tokens; AFNO-style blocks filter the token grid globally in Fourier space (``rfft2``, a
  block-diagonal complex two-layer MLP with soft-shrinkage, ``irfft2``) with residuals and a
  token MLP; a learned linear map over time turns ``T_in`` token grids into ``T_out``; a
  transposed convolution returns to pixels.
- DST (discrete spatio-temporal): a convolutional encoder (two stride-2 convolutions and a
  residual stack) maps each frame to a latent grid at ``H/4``; a vector-quantised memory bank
  with EMA codebook updates and straight-through gradients discretises it; a SimVP-style
  Inception-UNet translator maps the ``T_in * D`` latent channels to ``T_out * D``; a mirrored
  decoder returns to pixels.

Pure torch (no xarray). The code dimension ``D`` may be ``"auto"`` in the config: it is then
chosen from the intrinsic dimension of the encoder latents by
:func:`esmscale.forecast.training.train`, and the model must be built with an integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from esmscale.errors import EsmscaleError
from esmscale.models.modeling_utils import ConfigMixin, PretrainedMixin, config_from_dict

__all__ = [
    "Decoder",
    "Encoder",
    "FourierBranch",
    "PastNet",
    "PastNetConfig",
    "PretrainedMixin",
    "SpectralFilter",
    "Translator",
    "VectorQuantizerEMA",
    "check_clip",
    "frozen_from_dict",
]

# kept importable under their old names (one release); the shared versions live in modeling_utils
frozen_from_dict = config_from_dict


@dataclass(frozen=True)
class PastNetConfig(ConfigMixin):
    """Architecture of :class:`PastNet` (frozen; round-trips through ``to_dict``/``from_dict``).

    Parameters
    ----------
    in_channels, t_in, t_out
        Channels per frame, input frames and output frames.
    use_fourier, use_discrete, use_memory
        Switch the Fourier branch, the discrete branch, and the codebook (without it the
        discrete branch is a continuous SimVP) on or off (ablations).
    patch_size, embed_dim, fourier_depth, fourier_blocks, mlp_ratio, sparsity
        Fourier branch: patch size in cells, token width, number of AFNO blocks, number of
        diagonal blocks of the spectral MLP, token-MLP width factor, soft-shrink threshold.
    hidden, res_layers
        Width of the encoder/decoder and number of residual layers.
    num_codes, code_dim, commitment, ema_decay, dead_threshold
        Memory bank: number of codes K, code dimension D (an int, or ``"auto"`` to be chosen
        from the intrinsic dimension of the latents at training time), commitment weight,
        EMA decay of the codebook, EMA usage below which a code counts as dead (and is
        restarted during training).
    translator_hidden, translator_blocks
        Width and blocks per side of the Inception-UNet translator.
    residual
        Add the last input frame to the output (predict the change); off in the paper.
    intrinsic_dim
        The intrinsic-dimension estimate that set ``code_dim`` (recorded, not used).

    Examples
    --------
    >>> cfg = PastNetConfig(t_in=4, t_out=2, code_dim=8)
    >>> PastNetConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> cfg.multiple
    8
    """

    kind: ClassVar[str] = "pastnet"
    in_channels: int = 1
    t_in: int = 10
    t_out: int = 10
    use_fourier: bool = True
    use_discrete: bool = True
    use_memory: bool = True
    patch_size: int = 8
    embed_dim: int = 64
    fourier_depth: int = 2
    fourier_blocks: int = 4
    mlp_ratio: float = 2.0
    sparsity: float = 0.01
    hidden: int = 32
    res_layers: int = 2
    num_codes: int = 128
    code_dim: int | str = "auto"
    commitment: float = 0.25
    ema_decay: float = 0.99
    dead_threshold: float = 0.05
    translator_hidden: int = 64
    translator_blocks: int = 2
    residual: bool = False
    intrinsic_dim: float | None = None

    def __post_init__(self) -> None:
        for name in ("in_channels", "t_in", "t_out", "patch_size", "embed_dim", "hidden"):
            if int(getattr(self, name)) < 1:
                raise EsmscaleError(f"PastNetConfig.{name}={getattr(self, name)} must be >= 1.")
        if not (self.use_fourier or self.use_discrete):
            raise EsmscaleError("PastNetConfig: switch on use_fourier or use_discrete (or both).")
        if self.code_dim != "auto" and (not isinstance(self.code_dim, int) or self.code_dim < 1):
            raise EsmscaleError(
                f"PastNetConfig.code_dim={self.code_dim!r} must be a positive int or 'auto'."
            )
        if self.embed_dim % self.fourier_blocks:
            raise EsmscaleError(
                f"PastNetConfig: embed_dim={self.embed_dim} must be divisible by "
                f"fourier_blocks={self.fourier_blocks}."
            )
        if self.hidden % 2:
            raise EsmscaleError(f"PastNetConfig.hidden={self.hidden} must be even.")

    @property
    def multiple(self) -> int:
        """Grid sizes H and W must be multiples of this."""
        m = self.patch_size if self.use_fourier else 1
        return math.lcm(m, 4) if self.use_discrete else m


# Fourier branch ---------------------------------------------------------------------------------
class SpectralFilter(nn.Module):
    """AFNO token mixer: FFT over the token grid, block-diagonal complex MLP, inverse FFT.

    Input and output are channels-last token grids ``(N, h, w, E)``.

    Examples
    --------
    >>> f = SpectralFilter(dim=8, blocks=2, sparsity=0.01)
    >>> f(torch.randn(2, 4, 6, 8)).shape  # (N, h, w, E): any token grid
    torch.Size([2, 4, 6, 8])
    >>> zero = SpectralFilter(dim=8, blocks=2, sparsity=0.01)
    >>> for p in zero.parameters():
    ...     _ = p.data.zero_()
    >>> x = torch.randn(1, 4, 4, 8)
    >>> torch.equal(zero(x), x)  # residual: a filter with zero weights passes tokens through
    True
    """

    def __init__(self, dim: int, blocks: int, sparsity: float, hidden_factor: int = 1) -> None:
        super().__init__()
        self.blocks, self.bs, self.sparsity = blocks, dim // blocks, sparsity
        hid = self.bs * hidden_factor
        scale = 0.02
        self.w1 = nn.Parameter(scale * torch.randn(2, blocks, self.bs, hid))
        self.b1 = nn.Parameter(scale * torch.randn(2, blocks, hid))
        self.w2 = nn.Parameter(scale * torch.randn(2, blocks, hid, self.bs))
        self.b2 = nn.Parameter(scale * torch.randn(2, blocks, self.bs))

    @staticmethod
    def _cmul(
        re: torch.Tensor, im: torch.Tensor, w: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Complex block matmul ``(re + i im) @ (w0 + i w1) + (b0 + i b1)``."""
        out_re = torch.einsum("...bi,bio->...bo", re, w[0]) - torch.einsum(
            "...bi,bio->...bo", im, w[1]
        )
        out_im = torch.einsum("...bi,bio->...bo", re, w[1]) + torch.einsum(
            "...bi,bio->...bo", im, w[0]
        )
        return out_re + b[0], out_im + b[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter ``x`` of shape ``(N, h, w, E)``; returns the same shape."""
        n, h, w, e = x.shape
        spec = torch.fft.rfft2(x.float(), dim=(1, 2), norm="ortho")
        spec = spec.reshape(n, h, w // 2 + 1, self.blocks, self.bs)
        re, im = self._cmul(spec.real, spec.imag, self.w1, self.b1)
        re, im = F.relu(re), F.relu(im)
        re, im = self._cmul(re, im, self.w2, self.b2)
        out = torch.view_as_complex(
            F.softshrink(torch.stack([re, im], dim=-1), lambd=self.sparsity).contiguous()
        )
        out = out.reshape(n, h, w // 2 + 1, e)
        return torch.fft.irfft2(out, s=(h, w), dim=(1, 2), norm="ortho").to(x.dtype) + x


class _FourierBlock(nn.Module):
    def __init__(self, dim: int, blocks: int, mlp_ratio: float, sparsity: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.filter = SpectralFilter(dim, blocks, sparsity)
        self.norm2 = nn.LayerNorm(dim)
        hid = max(int(dim * mlp_ratio), 1)
        self.mlp = nn.Sequential(nn.Linear(dim, hid), nn.GELU(), nn.Linear(hid, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.filter(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FourierBranch(nn.Module):
    """FPG branch: patch tokens, global Fourier filtering, temporal map, transposed-conv head.

    Examples
    --------
    >>> cfg = PastNetConfig(t_in=3, t_out=2, patch_size=4, embed_dim=8, fourier_blocks=2)
    >>> FourierBranch(cfg)(torch.randn(1, 3, 1, 16, 12)).shape  # (B, T, C, H, W)
    torch.Size([1, 2, 1, 16, 12])
    """

    def __init__(self, cfg: PastNetConfig) -> None:
        super().__init__()
        c, e, p = cfg.in_channels, cfg.embed_dim, cfg.patch_size
        self.embed = nn.Conv2d(c, e, kernel_size=p, stride=p)
        self.pos = nn.Parameter(0.02 * torch.randn(1, e, 8, 8))  # resized to any token grid
        self.blocks = nn.ModuleList(
            _FourierBlock(e, cfg.fourier_blocks, cfg.mlp_ratio, cfg.sparsity)
            for _ in range(cfg.fourier_depth)
        )
        self.time_map = nn.Parameter(torch.full((cfg.t_out, cfg.t_in), 1.0 / cfg.t_in))
        self.time_bias = nn.Parameter(torch.zeros(cfg.t_out, e))
        self.norm = nn.LayerNorm(e)
        self.head = nn.ConvTranspose2d(e, c, kernel_size=p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T_in, C, H, W) -> (B, T_out, C, H, W)``."""
        b, t, c, h, w = x.shape
        tok = self.embed(x.reshape(b * t, c, h, w))
        tok = tok + F.interpolate(self.pos, size=tok.shape[-2:], mode="bilinear")
        z = tok.permute(0, 2, 3, 1)  # (B*T, h, w, E)
        for blk in self.blocks:
            z = blk(z)
        z = z.reshape(b, t, *z.shape[1:])
        z = torch.einsum("ot,bthwe->bohwe", self.time_map, z) + self.time_bias[:, None, None, :]
        z = self.norm(z).reshape(-1, *z.shape[2:]).permute(0, 3, 1, 2)
        out = self.head(z)
        return out.reshape(b, -1, c, h, w)


# Discrete branch --------------------------------------------------------------------------------
class _ResidualStack(nn.Module):
    def __init__(self, ch: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(ch, ch // 2, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(ch // 2, ch, 1),
            )
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return F.relu(x)


class Encoder(nn.Module):
    """Frame encoder: two stride-2 convolutions and a residual stack, ``H -> H/4``.

    Examples
    --------
    >>> Encoder(in_channels=2, hidden=8, res_layers=1)(torch.randn(3, 2, 16, 12)).shape
    torch.Size([3, 8, 4, 3])
    """

    def __init__(self, in_channels: int, hidden: int, res_layers: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            _ResidualStack(hidden, res_layers),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to ``(N, C, H, W)`` frames."""
        return self.net(x)


class Decoder(nn.Module):
    """Mirror of :class:`Encoder`: residual stack and two stride-2 transposed convolutions.

    Examples
    --------
    >>> enc, dec = Encoder(2, 8, 1), Decoder(8, 2, 1)
    >>> x = torch.randn(3, 2, 16, 12)
    >>> dec(enc(x)).shape == x.shape  # back to the frame grid
    True
    """

    def __init__(self, hidden: int, out_channels: int, res_layers: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1),
            _ResidualStack(hidden, res_layers),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, out_channels, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to ``(N, C, H, W)`` frames."""
        return self.net(x)


class VectorQuantizerEMA(nn.Module):
    """Vector-quantised memory bank with EMA codebook updates and straight-through gradients.

    In training mode each call moves every used code to the EMA of the latents assigned to it
    (``code_k = ema_sum_k / ema_count_k`` with Laplace smoothing) and restarts dead codes
    (EMA count below ``dead_threshold``) at the worst-quantised latents of the batch. The
    first training batch initialises the codes with evenly spaced latents.

    Examples
    --------
    >>> vq = VectorQuantizerEMA(num_codes=16, dim=4)
    >>> z = torch.randn(2, 4, 3, 3, requires_grad=True)
    >>> q, stats = vq(z)
    >>> q.shape, sorted(stats)
    (torch.Size([2, 4, 3, 3]), ['commitment', 'dead_codes', 'perplexity'])
    """

    codebook: torch.Tensor
    ema_count: torch.Tensor
    ema_sum: torch.Tensor
    initialised: torch.Tensor

    def __init__(
        self,
        num_codes: int,
        dim: int,
        decay: float = 0.99,
        dead_threshold: float = 0.05,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.num_codes, self.dim, self.decay, self.eps = num_codes, dim, decay, eps
        self.dead_threshold = dead_threshold
        codes = torch.randn(num_codes, dim)
        self.register_buffer("codebook", codes)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", codes.clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def _init_from(self, flat: torch.Tensor) -> None:
        """First training batch: codes := evenly spaced latents (the scale of the data)."""
        pick = torch.linspace(0, flat.shape[0] - 1, self.num_codes).round().long()
        self.codebook.copy_(flat[pick])
        self.ema_sum.copy_(flat[pick])
        self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    def _update(self, flat: torch.Tensor, onehot: torch.Tensor, dist: torch.Tensor) -> None:
        d = self.decay
        self.ema_count.mul_(d).add_(onehot.sum(0), alpha=1 - d)
        self.ema_sum.mul_(d).add_(onehot.t() @ flat, alpha=1 - d)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.num_codes * self.eps) * total
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        dead = torch.nonzero(self.ema_count < self.dead_threshold).flatten()
        if dead.numel():  # restart at the latents quantised worst (deterministic)
            worst = torch.argsort(dist.min(dim=1).values, descending=True)[: dead.numel()]
            dead = dead[: worst.numel()]
            self.codebook[dead] = flat[worst]
            self.ema_sum[dead] = flat[worst]
            self.ema_count[dead] = 1.0

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Quantise ``z`` ``(N, D, h, w)``; returns the straight-through output and statistics."""
        n, dim, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, dim)
        if self.training and not bool(self.initialised):
            with torch.no_grad():
                self._init_from(flat.detach())
        cb = self.codebook
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ cb.t() + cb.pow(2).sum(1)[None, :]
        idx = dist.argmin(1)
        quant = cb[idx]
        onehot = F.one_hot(idx, self.num_codes).to(flat.dtype)
        probs = onehot.mean(0)
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        commitment = F.mse_loss(flat, quant.detach())
        if self.training:
            with torch.no_grad():
                self._update(flat.detach(), onehot, dist.detach())
        out = flat + (quant - flat).detach()  # straight-through estimator
        stats = {
            "commitment": commitment,
            "perplexity": perplexity.detach(),
            "dead_codes": (self.ema_count < self.dead_threshold).sum().detach().float(),
        }
        return out.reshape(n, h, w, dim).permute(0, 3, 1, 2), stats


class _Inception(nn.Module):
    def __init__(self, cin: int, chid: int, cout: int, kernels: tuple[int, ...] = (3, 5, 7)):
        super().__init__()
        g = math.gcd(8, chid, cout)
        self.reduce = nn.Conv2d(cin, chid, 1)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(chid, cout, k, padding=k // 2, groups=g),
                nn.GroupNorm(g, cout),
                nn.LeakyReLU(0.2),
            )
            for k in kernels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduce(x)
        return torch.stack([b(y) for b in self.branches]).sum(0)


class Translator(nn.Module):
    """SimVP-style Inception-UNet over time stacked in channels: ``T_in*D -> T_out*D``.

    Examples
    --------
    >>> t_in, t_out, d = 3, 2, 4
    >>> net = Translator(t_in * d, t_out * d, hidden=16, blocks=2)
    >>> net(torch.randn(1, t_in * d, 5, 6)).shape
    torch.Size([1, 8, 5, 6])
    """

    def __init__(self, cin: int, cout: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(cin, hidden, 1)
        self.enc = nn.ModuleList(
            _Inception(hidden, hidden // 2, hidden) for _ in range(max(blocks, 1))
        )
        self.dec = nn.ModuleList(
            _Inception(hidden if i == 0 else 2 * hidden, hidden // 2, hidden)
            for i in range(max(blocks, 1))
        )
        self.out = nn.Conv2d(hidden, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, T_in*D, h, w)`` to ``(B, T_out*D, h, w)``."""
        z = self.inp(x)
        skips = []
        for blk in self.enc:
            z = blk(z)
            skips.append(z)
        z = self.dec[0](z)
        for j, blk in enumerate(self.dec[1:], start=1):
            z = blk(torch.cat([z, skips[-1 - j]], dim=1))
        return self.out(z)


class DiscreteBranch(nn.Module):
    """DST branch: encoder, memory bank, translator, decoder."""

    def __init__(self, cfg: PastNetConfig) -> None:
        super().__init__()
        if not isinstance(cfg.code_dim, int):
            raise EsmscaleError(
                "PastNet needs an integer code_dim; code_dim='auto' is resolved by "
                "esmscale.forecast.train (or pass e.g. code_dim=16)."
            )
        d, hid = cfg.code_dim, cfg.hidden
        self.t_out, self.code_dim = cfg.t_out, d
        self.encoder = Encoder(cfg.in_channels, hid, cfg.res_layers)
        self.pre_quant = nn.Conv2d(hid, d, 1)
        self.vq = (
            VectorQuantizerEMA(cfg.num_codes, d, cfg.ema_decay, cfg.dead_threshold)
            if cfg.use_memory
            else None
        )
        self.translator = Translator(
            cfg.t_in * d, cfg.t_out * d, cfg.translator_hidden, cfg.translator_blocks
        )
        self.post_quant = nn.Conv2d(d, hid, 1)
        self.decoder = Decoder(hid, cfg.in_channels, cfg.res_layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        b, t, c, h, w = x.shape
        z = self.pre_quant(self.encoder(x.reshape(b * t, c, h, w)))
        stats: dict[str, torch.Tensor] = {}
        if self.vq is not None:
            z, stats = self.vq(z)
        z = self.translator(z.reshape(b, t * self.code_dim, *z.shape[-2:]))
        z = z.reshape(b * self.t_out, self.code_dim, *z.shape[-2:])
        out = self.decoder(self.post_quant(z))
        return out.reshape(b, self.t_out, c, h, w), stats


def check_clip(x: torch.Tensor, cfg: Any, multiple: int, name: str) -> None:
    """Raise a helpful error unless ``x`` is ``(B, t_in, in_channels, H, W)`` with H, W ok.

    Examples
    --------
    >>> cfg = PastNetConfig(t_in=3, t_out=2)
    >>> check_clip(torch.zeros(1, 3, 1, 16, 16), cfg, cfg.multiple, "PastNet")  # fine
    >>> check_clip(torch.zeros(1, 3, 1, 16, 20), cfg, cfg.multiple, "PastNet")
    Traceback (most recent call last):
    ...
    esmscale.errors.EsmscaleError: PastNet: grid 16x20 is not divisible by 8 (patch size / ...
    """
    if x.ndim != 5:
        raise EsmscaleError(
            f"{name} expects a clip (batch, time, channel, y, x), got shape {tuple(x.shape)}."
        )
    _, t, c, h, w = x.shape
    if t != cfg.t_in or c != cfg.in_channels:
        raise EsmscaleError(
            f"{name} was built for {cfg.t_in} input frames of {cfg.in_channels} channel(s), got "
            f"{t} frames of {c} channel(s); pass clips of that shape or build a new model."
        )
    if h % multiple or w % multiple:
        raise EsmscaleError(
            f"{name}: grid {h}x{w} is not divisible by {multiple} (patch size / encoder "
            f"stride); pad or crop the grid to a multiple of {multiple} (esmscale.forecast.train "
            "pads automatically with pad=True)."
        )


class PastNet(PretrainedMixin, nn.Module):
    """PastNet forecaster on normalised clips ``(B, T_in, C, H, W) -> (B, T_out, C, H, W)``.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = PastNet(PastNetConfig(t_in=3, t_out=2, code_dim=4, embed_dim=16, hidden=8,
    ...                             translator_hidden=16, num_codes=8))
    >>> net(torch.randn(1, 3, 1, 16, 24)).shape
    torch.Size([1, 2, 1, 16, 24])
    """

    config_class = PastNetConfig

    def __init__(self, config: PastNetConfig) -> None:
        super().__init__()
        self.config = config
        self.fourier = FourierBranch(config) if config.use_fourier else None
        self.discrete = DiscreteBranch(config) if config.use_discrete else None

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forecast and the auxiliary statistics (``commitment`` loss, codebook usage)."""
        check_clip(x, self.config, self.config.multiple, "PastNet")
        out = torch.zeros(
            x.shape[0], self.config.t_out, *x.shape[2:], dtype=x.dtype, device=x.device
        )
        stats: dict[str, torch.Tensor] = {}
        if self.fourier is not None:
            out = out + self.fourier(x)
        if self.discrete is not None:
            y, stats = self.discrete(x)
            out = out + y
        if self.config.residual:
            out = out + x[:, -1:]
        if "commitment" in stats:
            stats["aux_loss"] = self.config.commitment * stats["commitment"]
        return out, stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast ``T_out`` frames from ``T_in`` frames."""
        return self.forward_train(x)[0]

    def __repr__(self) -> str:
        c = self.config
        return (
            f"PastNet(t_in={c.t_in}, t_out={c.t_out}, channels={c.in_channels}, "
            f"fourier={c.use_fourier}, discrete={c.use_discrete}, memory={c.use_memory}, "
            f"K={c.num_codes}, D={c.code_dim}, params={self.num_parameters():,})"
        )
