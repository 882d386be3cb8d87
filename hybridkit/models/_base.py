"""What the networks share: config checks, convolutions with the grid's padding, the residual step."""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Mapping, TypeVar

import torch
from torch import nn

from .._config import from_dict

C = TypeVar("C")

#: activation name -> module class (configs name activations by these keys)
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}


def check_layout(cfg) -> None:
    """Validate channel counts, ``ndim``, ``kernel_size`` and ``activation`` (the fields every
    synthetic model's config has; raises ValueError, which ``from_dict`` wraps)."""
    if int(cfg.in_channels) < 1 or int(cfg.out_channels) < 1:
        raise ValueError(
            f"Expected in_channels >= 1 and out_channels >= 1, got {cfg.in_channels}, {cfg.out_channels}."
        )
    if cfg.ndim not in (1, 2, 3):
        raise ValueError(f"Expected ndim in (1, 2, 3), got ndim={cfg.ndim}.")
    if cfg.kernel_size < 1 or cfg.kernel_size % 2 == 0:
        raise ValueError(
            f"Expected an odd kernel_size >= 1 (the output keeps the input's size), got {cfg.kernel_size}."
        )
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"Expected activation in {sorted(ACTIVATIONS)}, got {cfg.activation!r}.")


def check_common(cfg) -> None:
    """Validate the fields every stepping network's config has: :func:`check_layout` and the
    channel counts that ``residual`` needs."""
    check_layout(cfg)
    if cfg.residual and cfg.out_channels > cfg.in_channels:
        raise ValueError(
            f"residual=True predicts u + net(u) from the first out_channels input channels, so it needs "
            f"out_channels <= in_channels; got in_channels={cfg.in_channels}, "
            f"out_channels={cfg.out_channels}. Fix: set residual=False or check the channel counts."
        )


def make_config(cls: type[C], config: Mapping[str, Any] | C | None, kwargs: dict, name: str) -> C:
    """One config from either a config object / dict or keyword arguments (not both)."""
    if config is not None and kwargs:
        raise TypeError(
            f"{name}: pass either a config (dict or {cls.__name__}) or keyword arguments, not both; "
            f"got a config and {sorted(kwargs)}."
        )
    return from_dict(cls, config if config is not None else kwargs, where=f"{name} config")


def conv(cfg, c_in: int, c_out: int, kernel_size: int | None = None) -> nn.Module:
    """A size-preserving convolution on ``cfg.ndim`` axes; periodic (circular) padding when
    ``cfg.periodic``, else zero padding (the grid's ghost cells are zero)."""
    k = cfg.kernel_size if kernel_size is None else kernel_size
    conv_cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[cfg.ndim - 1]
    return conv_cls(c_in, c_out, k, padding=k // 2,
                    padding_mode="circular" if cfg.periodic else "zeros")


def output_conv(cfg, c_in: int) -> nn.Module:
    """The last 1x1 convolution. Zero-initialised with ``residual=True``, so that an untrained
    network is the identity step ``u -> u``: long rollouts start stable and training only has to
    learn the change per step."""
    layer = conv(cfg, c_in, cfg.out_channels, kernel_size=1)
    if cfg.residual:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    return layer


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Raise ValueError unless ``x`` is ``(batch, model.config.in_channels, *space)`` with
    ``model.config.ndim`` spatial axes."""
    cfg = model.config
    if x.ndim != cfg.ndim + 2 or x.shape[1] != cfg.in_channels:
        space = ", ".join(["x", "y", "z"][: cfg.ndim])
        raise ValueError(
            f"{type(model).__name__} expects input (batch, {cfg.in_channels}, {space}), got "
            f"{tuple(x.shape)}. Fix: add a batch axis with x[None] for one sample, or build the "
            f"network with in_channels / ndim matching the data."
        )


class AbstractNetwork(nn.Module, abc.ABC):
    """A network that maps the current state to the next state of the dynamic fields.

    Input ``(batch, in_channels, *space)``: the dynamic channels first, then the static ones (the
    channel layout of :mod:`hybridkit.convert` and ``HybridDataset``). Output
    ``(batch, out_channels, *space)``: the next state of the dynamic channels. With
    ``config.residual`` (the default) the output is ``u + body(u)`` where ``u`` is the first
    ``out_channels`` input channels, i.e. the network learns the increment per time step.

    Subclasses build their layers in ``__init__`` and implement :meth:`_body`.
    """

    config: Any  # the network's config dataclass (written into checkpoints)

    @abc.abstractmethod
    def _body(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *space) -> (batch, out_channels, *space)``."""

    def _check_input(self, x: torch.Tensor) -> None:
        check_input(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Next state of the dynamic channels, ``(batch, out_channels, *space)``."""
        self._check_input(x)
        y = self._body(x)
        if self.config.residual:
            y = x[:, : self.config.out_channels] + y
        return y

    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))


__all__ = ["AbstractNetwork", "ACTIVATIONS"]
