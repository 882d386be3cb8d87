"""A residual convolutional network at full resolution (no down-sampling)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._base import ACTIVATIONS, AbstractNetwork, check_common, conv, make_config, output_conv


@dataclass(frozen=True)
class ResNetConfig:
    """Options of :class:`ResNet` (unknown keys are rejected)."""

    in_channels: int  # dynamic + static input channels
    out_channels: int  # dynamic channels predicted
    ndim: int = 1  # spatial axes: 1, 2 or 3
    width: int = 32  # channels of the hidden layers
    depth: int = 4  # residual blocks (two convolutions each)
    kernel_size: int = 3  # odd, so that convolutions keep the size
    periodic: bool = True  # circular padding (periodic domain), else zero padding
    activation: str = "gelu"  # one of hybridkit.models.ACTIVATIONS
    residual: bool = True  # predict u + net(u) (the increment per step), see AbstractNetwork

    def __post_init__(self):
        check_common(self)
        if self.width < 1 or self.depth < 0:
            raise ValueError(f"Expected width >= 1 and depth >= 0, got {self.width}, {self.depth}.")


class _ResBlock(nn.Module):
    """``h + conv(act(conv(act(h))))`` (pre-activation)."""

    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        act = ACTIVATIONS[cfg.activation]
        self.net = nn.Sequential(act(), conv(cfg, cfg.width, cfg.width), act(), conv(cfg, cfg.width, cfg.width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)


class ResNet(AbstractNetwork):
    """Lift to ``width`` channels, ``depth`` residual blocks, project to ``out_channels``.

    Input ``(batch, in_channels, *space)``, output ``(batch, out_channels, *space)``; any spatial
    size. Build with keyword arguments, a dict or a :class:`ResNetConfig`.
    """

    def __init__(self, config: ResNetConfig | dict | None = None, /, **kwargs):
        super().__init__()
        self.config = cfg = make_config(ResNetConfig, config, kwargs, "ResNet")
        self.lift = conv(cfg, cfg.in_channels, cfg.width)
        self.blocks = nn.Sequential(*[_ResBlock(cfg) for _ in range(cfg.depth)])
        self.act = ACTIVATIONS[cfg.activation]()
        self.head = output_conv(cfg, cfg.width)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.blocks(self.lift(x))))
