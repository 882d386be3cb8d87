"""Synthetic models: PyTorch networks that step a PDE state forward in time, and neural fields.

Every network maps ``(batch, in_channels, *space)`` (dynamic channels first, then static ones)
to the next state of the dynamic channels ``(batch, out_channels, *space)``; by default as the
residual ``u + net(u)`` (see :class:`AbstractNetwork`). Periodic grids use circular padding.

* :class:`UNet`, :class:`UNetConfig` — multi-scale encoder/decoder with skip connections
* :class:`ResNet`, :class:`ResNetConfig` — residual blocks at full resolution
* :class:`ConvNet`, :class:`ConvNetConfig` — a plain convolution stack
* :class:`FNO`, :class:`FNOConfig`, :class:`SpectralConv` — a Fourier Neural Operator (global
  convolutions on the lowest Fourier modes; any resolution)
* :class:`AbstractNetwork` — what they share (input checks, the residual step)
* :class:`NeuralField`, :class:`NeuralFieldConfig` — the HYCO formulation: a Fourier-feature
  coordinate MLP ``u(x, t | u_0)`` conditioned on the initial state, for any real time
  (:meth:`NeuralField.predict`); :class:`AbstractNeuralField` — the marker ``rollout`` dispatches on
* :func:`rollout` — autoregressive prediction, static channels fed back unchanged (a neural
  field: its prediction at times 1 .. n)
* :class:`ModelRegistry` — the original design note's name -> class map (synthetic and physical models)
"""
from ._base import ACTIVATIONS, AbstractNetwork
from ._convnet import ConvNet, ConvNetConfig
from ._fno import FNO, FNOConfig, SpectralConv
from ._neural_field import AbstractNeuralField, NeuralField, NeuralFieldConfig
from ._registry import ModelRegistry
from ._resnet import ResNet, ResNetConfig
from ._rollout import rollout
from ._unet import UNet, UNetConfig

__all__ = [
    "ACTIVATIONS", "AbstractNetwork", "UNet", "UNetConfig", "ResNet", "ResNetConfig", "ConvNet",
    "ConvNetConfig", "FNO", "FNOConfig", "SpectralConv", "AbstractNeuralField", "NeuralField",
    "NeuralFieldConfig", "rollout", "ModelRegistry",
]
