"""A plain stack of convolutions (the simplest baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._base import ACTIVATIONS, AbstractNetwork, check_common, conv, make_config, output_conv


@dataclass(frozen=True)
class ConvNetConfig:
    """Options of :class:`ConvNet` (unknown keys are rejected)."""

    in_channels: int  # dynamic + static input channels
    out_channels: int  # dynamic channels predicted
    ndim: int = 1  # spatial axes: 1, 2 or 3
    width: int = 32  # channels of the hidden layers
    depth: int = 3  # hidden convolution layers (>= 1)
    kernel_size: int = 5  # odd, so that convolutions keep the size
    periodic: bool = True  # circular padding (periodic domain), else zero padding
    activation: str = "gelu"  # one of hybridkit.models.ACTIVATIONS
    residual: bool = True  # predict u + net(u) (the increment per step), see AbstractNetwork

    def __post_init__(self):
        check_common(self)
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"Expected width >= 1 and depth >= 1, got {self.width}, {self.depth}.")


class ConvNet(AbstractNetwork):
    """``depth`` convolutions of ``width`` channels with activations, then a 1x1 projection.

    Input ``(batch, in_channels, *space)``, output ``(batch, out_channels, *space)``; any spatial
    size. Build with keyword arguments, a dict or a :class:`ConvNetConfig`.
    """

    def __init__(self, config: ConvNetConfig | dict | None = None, /, **kwargs):
        super().__init__()
        self.config = cfg = make_config(ConvNetConfig, config, kwargs, "ConvNet")
        act = ACTIVATIONS[cfg.activation]
        layers: list[nn.Module] = []
        for i in range(cfg.depth):
            layers += [conv(cfg, cfg.in_channels if i == 0 else cfg.width, cfg.width), act()]
        self.layers = nn.Sequential(*layers)
        self.head = output_conv(cfg, cfg.width)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))
