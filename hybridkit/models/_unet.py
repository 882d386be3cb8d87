"""A small UNet for 1D/2D/3D grids with periodic padding."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ACTIVATIONS, AbstractNetwork, check_common, conv, make_config, output_conv


@dataclass(frozen=True)
class UNetConfig:
    """Options of :class:`UNet` (unknown keys are rejected)."""

    in_channels: int  # dynamic + static input channels
    out_channels: int  # dynamic channels predicted
    ndim: int = 1  # spatial axes: 1, 2 or 3
    features: int = 16  # channels at the finest level; doubled at each coarser level
    levels: int = 2  # 2x down-samplings; each spatial size must be divisible by 2**levels
    kernel_size: int = 3  # odd, so that convolutions keep the size
    periodic: bool = True  # circular padding (periodic domain), else zero padding
    activation: str = "gelu"  # one of hybridkit.models.ACTIVATIONS
    residual: bool = True  # predict u + net(u) (the increment per step), see AbstractNetwork

    def __post_init__(self):
        check_common(self)
        if self.features < 1 or self.levels < 0:
            raise ValueError(f"Expected features >= 1 and levels >= 0, got {self.features}, {self.levels}.")


def _block(cfg: UNetConfig, c_in: int, c_out: int) -> nn.Sequential:
    act = ACTIVATIONS[cfg.activation]
    return nn.Sequential(conv(cfg, c_in, c_out), act(), conv(cfg, c_out, c_out), act())


class UNet(AbstractNetwork):
    """UNet: two convolutions per level, average-pool down, nearest up-sampling, skip connections.

    Channels per level ``features * 2**l`` for ``l = 0 .. levels``. Input
    ``(batch, in_channels, *space)``, output ``(batch, out_channels, *space)``; each spatial size
    must be divisible by ``2**levels``.

    Build with keyword arguments (``UNet(in_channels=2, out_channels=1, ndim=1)``), a dict or a
    :class:`UNetConfig`; see :class:`UNetConfig` for the options.
    """

    def __init__(self, config: UNetConfig | dict | None = None, /, **kwargs):
        super().__init__()
        self.config = cfg = make_config(UNetConfig, config, kwargs, "UNet")
        widths = [cfg.features * 2**lvl for lvl in range(cfg.levels + 1)]
        self.encoders = nn.ModuleList(
            [_block(cfg, cfg.in_channels, widths[0])]
            + [_block(cfg, widths[lvl - 1], widths[lvl]) for lvl in range(1, cfg.levels + 1)]
        )
        self.decoders = nn.ModuleList(
            [_block(cfg, widths[lvl + 1] + widths[lvl], widths[lvl]) for lvl in reversed(range(cfg.levels))]
        )
        self.head = output_conv(cfg, widths[0])
        self._pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[cfg.ndim - 1]

    def _check_input(self, x: torch.Tensor) -> None:
        super()._check_input(x)
        m = 2**self.config.levels
        if any(n % m for n in x.shape[2:]):
            raise ValueError(
                f"UNet with levels={self.config.levels} needs spatial sizes divisible by {m}, got "
                f"{tuple(x.shape[2:])}. Fix: use fewer levels or a resolution divisible by {m}."
            )

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for lvl, enc in enumerate(self.encoders):
            if lvl > 0:
                x = self._pool(x, 2)
            x = enc(x)
            skips.append(x)
        skips.pop()  # the coarsest level is x itself
        for dec in self.decoders:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = dec(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)
