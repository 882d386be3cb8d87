"""Synthetic models: PyTorch networks that step a PDE state forward in time.

Every network maps ``(batch, in_channels, *space)`` (dynamic channels first, then static ones)
to the next state of the dynamic channels ``(batch, out_channels, *space)``; by default as the
residual ``u + net(u)`` (see :class:`AbstractNetwork`). Periodic grids use circular padding.

* :class:`UNet`, :class:`UNetConfig` — multi-scale encoder/decoder with skip connections
* :class:`ResNet`, :class:`ResNetConfig` — residual blocks at full resolution
* :class:`ConvNet`, :class:`ConvNetConfig` — a plain convolution stack
* :class:`FNO`, :class:`FNOConfig`, :class:`SpectralConv` — a Fourier Neural Operator (global
  convolutions on the lowest Fourier modes; any resolution)
* :class:`AbstractNetwork` — what they share (input checks, the residual step)
* :func:`rollout` — autoregressive prediction, static channels fed back unchanged
* :class:`ModelRegistry` — the original design note's name -> class map (synthetic and physical models)
"""
from ._base import ACTIVATIONS, AbstractNetwork
from ._convnet import ConvNet, ConvNetConfig
from ._fno import FNO, FNOConfig, SpectralConv
from ._registry import ModelRegistry
from ._resnet import ResNet, ResNetConfig
from ._rollout import rollout
from ._unet import UNet, UNetConfig

__all__ = [
    "ACTIVATIONS", "AbstractNetwork", "UNet", "UNetConfig", "ResNet", "ResNetConfig", "ConvNet",
    "ConvNetConfig", "FNO", "FNOConfig", "SpectralConv", "rollout", "ModelRegistry",
]
