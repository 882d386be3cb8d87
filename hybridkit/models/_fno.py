"""A Fourier Neural Operator (Li et al. 2021, arXiv 2010.08895) for 1D/2D/3D grids.

Written here rather than taken from ``neuraloperator``: its 2.0 release pulls 28 packages into
the environment (wandb, seven opentelemetry packages, pydantic, protobuf, pytest-mock, ...), for
what is one spectral convolution and a few pointwise layers.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ACTIVATIONS, AbstractNetwork, check_common, conv, make_config, output_conv


@dataclass(frozen=True)
class FNOConfig:
    """Options of :class:`FNO` (unknown keys are rejected)."""

    in_channels: int  # dynamic + static input channels
    out_channels: int  # dynamic channels predicted
    ndim: int = 1  # spatial axes: 1, 2 or 3
    width: int = 32  # channels inside the Fourier layers
    modes: int = 16  # Fourier modes kept per axis (fewer where the grid has fewer)
    layers: int = 4  # Fourier layers
    kernel_size: int = 1  # the local path of each layer: 1 is the classic pointwise W; odd
    periodic: bool = True  # periodic domain; else zero-padded by `padding` cells before the FFT
    padding: int = 8  # cells appended per axis when periodic=False (the FFT wraps around)
    activation: str = "gelu"  # one of hybridkit.models.ACTIVATIONS
    residual: bool = True  # predict u + net(u) (the increment per step), see AbstractNetwork

    def __post_init__(self):
        check_common(self)
        if self.width < 1 or self.modes < 1 or self.layers < 1 or self.padding < 0:
            raise ValueError(
                f"Expected width >= 1, modes >= 1, layers >= 1 and padding >= 0, got width={self.width}, "
                f"modes={self.modes}, layers={self.layers}, padding={self.padding}.")


class SpectralConv(nn.Module):
    """``u -> irfftn(R . rfftn(u))`` with a learned complex ``R`` on the lowest ``modes`` per axis.

    A global convolution: each kept Fourier mode ``k`` of the output is ``R_k`` (a
    ``c_in x c_out`` matrix) times mode ``k`` of the input; higher modes are dropped. Along every
    axis but the last (whose real FFT has only non-negative frequencies) the ``modes`` lowest
    positive and negative frequencies are kept, one weight block per corner of the spectrum. On a
    grid with fewer modes than ``modes`` the lowest weights are used, so the layer runs on any
    resolution, and gives the same function on a finer grid of a band-limited input.

    Input ``(batch, c_in, *space)``, output ``(batch, c_out, *space)``.
    """

    def __init__(self, c_in: int, c_out: int, modes: int, ndim: int):
        super().__init__()
        self.modes, self.ndim = modes, ndim
        scale = 1.0 / (c_in * c_out)  # the reference implementation's initialisation
        corners = 2 ** (ndim - 1)
        # real storage (..., 2) of complex weights: optimisers, clipping, DDP and checkpoints see
        # ordinary float tensors
        self.weight = nn.Parameter(scale * torch.rand(corners, c_in, c_out, *([modes] * ndim), 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        space = x.shape[2:]
        dims = tuple(range(2, 2 + self.ndim))
        x_ft = torch.fft.rfftn(x, dim=dims)
        # modes kept per axis: at most half the grid along full axes, n // 2 + 1 along the last
        keep = [min(self.modes, n // 2) for n in space[:-1]] + [min(self.modes, space[-1] // 2 + 1)]
        w = torch.view_as_complex(self.weight)
        out = torch.zeros(x.shape[0], w.shape[2], *x_ft.shape[2:], dtype=x_ft.dtype, device=x.device)
        for c, signs in enumerate(itertools.product((1, -1), repeat=self.ndim - 1)):
            idx = tuple(slice(0, m) if s > 0 else slice(-m, None) for s, m in zip(signs, keep[:-1]))
            idx = (slice(None), slice(None)) + idx + (slice(0, keep[-1]),)
            wc = w[c][(slice(None), slice(None)) + tuple(slice(0, m) for m in keep)]
            out[idx] = torch.einsum("bi...,io...->bo...", x_ft[idx], wc)
        return torch.fft.irfftn(out, s=space, dim=dims)


class FNO(AbstractNetwork):
    """Fourier Neural Operator: lift, ``layers`` Fourier layers, project.

    Each layer is ``h -> act(K h + W h)`` with ``K`` a :class:`SpectralConv` (global, the lowest
    ``modes`` Fourier modes per axis) and ``W`` a local convolution (pointwise for
    ``kernel_size=1``); no activation after the last layer. Lifting and projection are pointwise.

    The FFT treats the domain as periodic. For ``periodic=False`` the hidden state is padded with
    ``padding`` zero cells at the end of each axis before the Fourier layers and cropped after, so
    the wrap-around of the FFT meets zeros (as hybridkit's zero ghost cells do) rather than the
    opposite boundary; the local convolutions pad with zeros too.

    Input ``(batch, in_channels, *space)``, output ``(batch, out_channels, *space)``; any spatial
    size (the modes are capped at what the grid holds). Build with keyword arguments, a dict or a
    :class:`FNOConfig`.
    """

    def __init__(self, config: FNOConfig | dict | None = None, /, **kwargs):
        super().__init__()
        self.config = cfg = make_config(FNOConfig, config, kwargs, "FNO")
        act = ACTIVATIONS[cfg.activation]
        self.lift = conv(cfg, cfg.in_channels, cfg.width, kernel_size=1)
        self.spectral = nn.ModuleList(SpectralConv(cfg.width, cfg.width, cfg.modes, cfg.ndim)
                                      for _ in range(cfg.layers))
        self.local = nn.ModuleList(conv(cfg, cfg.width, cfg.width) for _ in range(cfg.layers))
        self.act = act()
        self.project = nn.Sequential(conv(cfg, cfg.width, cfg.width, kernel_size=1), act())
        self.head = output_conv(cfg, cfg.width)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        h = self.lift(x)
        pad = 0 if cfg.periodic else cfg.padding
        if pad:
            h = F.pad(h, (0, pad) * cfg.ndim)
        for i, (k, w) in enumerate(zip(self.spectral, self.local)):
            h = k(h) + w(h)
            if i < cfg.layers - 1:
                h = self.act(h)
        if pad:
            h = h[(slice(None), slice(None)) + tuple(slice(0, n) for n in x.shape[2:])]
        return self.head(self.project(h))
