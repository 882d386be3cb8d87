"""A neural field conditioned on the initial state: ``u(x, t | u_0)`` on the grid, at any real time.

The HYCO authors' network (MJSteynberg/HYCO-Code) is a coordinate MLP ``u(x, y, t)`` fitted to one
trajectory. Here the same coordinate MLP is conditioned on the window's initial state, so that one
network serves every trajectory and predicts held-out ones from their initial states, and it fits
the stepping networks' data (windows ``initial -> targets at dt, 2 dt, ...``) and trainers.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ._base import ACTIVATIONS, check_input, check_layout, conv, make_config

__all__ = ["AbstractNeuralField", "NeuralField", "NeuralFieldConfig"]


class AbstractNeuralField(nn.Module, abc.ABC):
    """A synthetic model that predicts the dynamic fields at any time from an initial state.

    :func:`hybridkit.models.rollout` dispatches on this class: the rollout of a neural field over
    ``n`` steps is ``predict(initial, [1, ..., n])``, one evaluation rather than ``n``
    compositions, so every caller of ``rollout`` (trainers, metrics, evaluation) gets the field's
    own predictions. Calling the module, ``field(x)``, is the one-step map
    ``predict(x, [1])[:, 0]``, so it can stand wherever a stepping network is expected.
    """

    config: object  # the model's config dataclass (written into checkpoints)

    @abc.abstractmethod
    def predict(self, initial: torch.Tensor, times: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """The dynamic fields at ``times`` after ``initial``.

        Args:
            initial: ``(batch, C_in, *space)``, dynamic channels first, then static ones.
            times: ``(T,)`` real times ``>= 0`` in units of the data's ``dt`` (any float: between
                frames, or beyond the window trained on).

        Returns:
            ``(batch, T, C_dyn, *space)``.
        """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The state one ``dt`` after ``x``: ``(batch, C_in, *space) -> (batch, C_dyn, *space)``."""
        return self.predict(x, [1.0])[:, 0]


@dataclass(frozen=True)
class NeuralFieldConfig:
    """Options of :class:`NeuralField` (unknown keys are rejected)."""

    in_channels: int  # dynamic + static input channels
    out_channels: int  # dynamic channels predicted (the first out_channels input channels)
    ndim: int = 1  # spatial axes: 1, 2 or 3
    periodic: bool = True  # circular padding in the encoder (periodic domain), else zero padding
    features: int = 32  # channels of the convolutional encoder of u_0
    encoder_layers: int = 3  # size-preserving convolutions on u_0 (receptive field 1 + 3 * 4 = 13 cells)
    kernel_size: int = 5  # odd
    latent: int = 16  # size of the global code of u_0 (the encoder's spatial mean); 0: none
    width: int = 64  # hidden units of the coordinate MLP (the HYCO authors: 256)
    depth: int = 3  # layers of the coordinate MLP (the HYCO authors: 4)
    space_modes: int = 1  # Fourier features of x per axis: sin / cos(2 pi k x / L), k = 1 .. space_modes; 0: none
    time_modes: int = 4  # Fourier features of t: sin / cos(pi 2^k t / time_scale), k = 0 .. time_modes - 1
    time_scale: float = 16.0  # in units of dt: the slowest time feature's half period
    horizon: float | None = None  # in dt: past it, restart from the own prediction; None: the longest time trained on
    activation: str = "gelu"  # one of hybridkit.models.ACTIVATIONS (smooth: the field is smooth in x and t)

    def __post_init__(self):
        check_layout(self)
        if self.out_channels > self.in_channels:
            raise ValueError(
                f"A neural field predicts u_0 + t g(x, t) from the first out_channels input channels, so it "
                f"needs out_channels <= in_channels; got in_channels={self.in_channels}, "
                f"out_channels={self.out_channels}. Fix: in_channels = dynamic + static channels, "
                "out_channels = dynamic channels.")
        counts = {"features": (self.features, 1), "encoder_layers": (self.encoder_layers, 0),
                  "latent": (self.latent, 0), "width": (self.width, 1), "depth": (self.depth, 1),
                  "space_modes": (self.space_modes, 0), "time_modes": (self.time_modes, 0)}
        bad = {k: v for k, (v, low) in counts.items() if v < low}
        if bad:
            raise ValueError(f"Expected features, width, depth >= 1 and encoder_layers, latent, space_modes, "
                             f"time_modes >= 0, got {bad}.")
        for name in ("time_scale", "horizon"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"Expected {name} > 0 (a finite number of dt), got {value!r}.")


class NeuralField(AbstractNeuralField):
    """``u(x, t | u_0) = u_0(x) + t * MLP([gamma(x), gamma(t), f(x), z])`` on the grid's cells,
    smooth in ``t`` (any real time).

    * ``f(x)``: local features of the initial state (dynamic and static channels together):
      ``encoder_layers`` size-preserving convolutions with the grid's padding, and the input
      channels themselves. The change of a diffusive or advective state over a short time depends
      on ``u_0`` and its derivatives near ``x`` (and on a coefficient field there), which a few
      convolutions compute; the translation-equivariant encoder generalises to held-out states.
    * ``z``: a global code of ``u_0`` (the encoder's spatial mean, projected to ``latent``), for
      what depends on the whole state (its amplitude, a mean).
    * ``gamma(x)``: Fourier features of the cell centres ``x / L`` (periodic in the domain, so
      they respect a periodic grid); ``gamma(t)``: ``t / time_scale`` and Fourier features of
      ``t``. With them the MLP is a coordinate network, as in HYCO, conditioned on ``f`` and ``z``.
      The default ``space_modes=1`` (one period over the domain) tells the field where it is, for
      a coefficient that varies over the domain and is not an input, without the resolution to
      memorise the training trajectories themselves (measured on 2 Burgers trajectories: 4
      modes 2-5x worse than 1; on a diffusivity field seen on half the domain: 0 modes 2.5-6x
      worse than 1). Use 0 for strictly translation-invariant problems, more where a
      coefficient varies faster.
    * ``u_0 + t * ...``: at ``t = 0`` the prediction is the initial state exactly, and it is
      continuous in ``t`` from there. The last layer starts at zero: the untrained field is
      persistence (as the stepping networks start as the identity step).

    The first MLP layer acts on a concatenation, so it is a sum of one projection per input:
    the projection of ``f, z, gamma(x)`` is computed once per sample and that of ``gamma(t)``
    once per time, then broadcast to ``(batch, T, *space)``; the remaining layers are pointwise.

    Times beyond the horizon (``config.horizon``, or by default the longest time trained on,
    recorded in the buffer ``fitted_horizon``): the field restarts from its own prediction at
    multiples of the horizon ``H``, ``u(t) = u(t - kH | u(kH))``. The prediction stays
    continuous in ``t`` (at ``t = kH`` both sides equal ``u(kH)``), and it only ever uses the
    field on the times it was fitted on, from states like the ones it saw (windows start at every
    frame). Static channels are inputs only: they are carried unchanged into each restart.

    Input ``(batch, in_channels, *space)``; :meth:`predict` returns
    ``(batch, T, out_channels, *space)``. Build with keyword arguments, a dict or a
    :class:`NeuralFieldConfig`.
    """

    fitted_horizon: torch.Tensor

    def __init__(self, config: NeuralFieldConfig | dict | None = None, /, **kwargs):
        super().__init__()
        self.config = cfg = make_config(NeuralFieldConfig, config, kwargs, "NeuralField")
        act = ACTIVATIONS[cfg.activation]
        layers, c = [], cfg.in_channels
        for _ in range(cfg.encoder_layers):
            layers += [conv(cfg, c, cfg.features), act()]
            c = cfg.features
        self.encoder = nn.Sequential(*layers)
        local = cfg.in_channels + (cfg.features if cfg.encoder_layers else 0)
        self.local = nn.Linear(local, cfg.width)
        self.code = nn.Sequential(nn.Linear(local, cfg.latent), act(), nn.Linear(cfg.latent, cfg.width, bias=False)) \
            if cfg.latent else None
        self.space = nn.Linear(2 * cfg.space_modes * cfg.ndim, cfg.width, bias=False) if cfg.space_modes else None
        self.time = nn.Linear(1 + 2 * cfg.time_modes, cfg.width, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(cfg.width, cfg.width) for _ in range(cfg.depth - 1))
        self.act = act()
        self.head = nn.Linear(cfg.width, cfg.out_channels)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # the longest time (in dt) a training step has asked for: a float buffer, so it travels
        # with the weights in state_dict (and DDP broadcasts it like any buffer)
        self.register_buffer("fitted_horizon", torch.zeros(()))

    # ------------------------------------------------------------------ the public map
    def predict(self, initial: torch.Tensor, times: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """The dynamic fields at ``times`` (units of ``dt``) after ``initial``.

        In training mode with gradients on, ``fitted_horizon`` grows to ``max(times)`` first.

        Args:
            initial: ``(batch, in_channels, *space)``.
            times: ``(T,)`` finite times ``>= 0``; any order, any spacing.

        Returns:
            ``(batch, T, out_channels, *space)``; at ``t = 0`` exactly ``initial[:, :out_channels]``.

        Raises:
            ValueError: ``initial`` of the wrong shape, ``times`` not a non-empty 1-D sequence of
                finite numbers ``>= 0``.
        """
        check_input(self, initial)
        t = _as_times(times, initial)
        t_max = float(t.max())
        if self.training and torch.is_grad_enabled():
            self.fitted_horizon.fill_(max(float(self.fitted_horizon), t_max))
        horizon = self.horizon
        if horizon is None or t_max <= horizon:
            return self._field(initial, t)
        return self._restarted(initial, t, horizon)

    @property
    def horizon(self) -> float | None:
        """The time (in ``dt``) beyond which :meth:`predict` restarts from its own prediction
        (``config.horizon``, else ``fitted_horizon``); None before any training without one."""
        if self.config.horizon is not None:
            return self.config.horizon
        fitted = float(self.fitted_horizon)
        return fitted if fitted > 0 else None

    # ------------------------------------------------------------------ the field
    def _field(self, initial: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``u_0 + t * MLP(...)`` at all ``t`` at once: ``(B, T, C_dyn, *space)``."""
        cfg = self.config
        space = initial.shape[2:]
        f = torch.cat([initial, self.encoder(initial)], 1) if cfg.encoder_layers else initial
        f = f.movedim(1, -1)  # (B, *space, C): the MLP acts on the last axis
        h = self.local(f)
        if self.code is not None:
            z = self.code(f.mean(dim=tuple(range(1, 1 + cfg.ndim))))  # (B, width)
            h = h + z.view(len(z), *[1] * cfg.ndim, -1)
        if self.space is not None:
            h = h + self.space(_space_features(space, cfg.space_modes, initial))
        tau = self.time(_time_features(t, cfg.time_modes, cfg.time_scale))  # (T, width)
        h = self.act(h[:, None] + tau.view(1, len(t), *[1] * cfg.ndim, -1))  # (B, T, *space, width)
        for layer in self.hidden:
            h = self.act(layer(h))
        g = self.head(h).movedim(-1, 2)  # (B, T, C_dyn, *space)
        u0 = initial[:, None, : cfg.out_channels]
        return u0 + t.view(1, -1, *[1] * (cfg.ndim + 1)) * g

    def _restarted(self, initial: torch.Tensor, t: torch.Tensor, horizon: float) -> torch.Tensor:
        """Times past ``horizon``: segment ``k`` holds ``t`` in ``(kH, (k+1)H]`` and starts from
        the prediction at ``kH`` (``t = 0`` falls into segment 0)."""
        c = self.config.out_channels
        segment = torch.clamp(torch.ceil(t / horizon) - 1, min=0).long()
        static = initial[:, c:]
        state, pieces, order = initial, [], []
        for k in range(int(segment.max()) + 1):
            if k:
                step = self._field(state, t.new_tensor([horizon]))[:, 0]
                state = torch.cat([step, static], 1)
            index = torch.nonzero(segment == k).flatten()
            if len(index):
                pieces.append(self._field(state, t[index] - k * horizon))
                order.append(index)
        out = torch.cat(pieces, 1)
        inverse = torch.empty_like(segment)
        inverse[torch.cat(order)] = torch.arange(len(t), device=t.device)
        return out[:, inverse]

    def extra_repr(self) -> str:
        return f"config={self.config!r}"


def _as_times(times, like: torch.Tensor) -> torch.Tensor:
    """``times`` as a 1-D tensor on ``like``'s device and dtype, checked."""
    try:
        t = torch.as_tensor(times, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"Expected times as a 1-D sequence of numbers (units of dt), got {times!r}.") from e
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(
            f"Expected times as a non-empty 1-D sequence (units of dt), got shape {tuple(t.shape)}. "
            "Fix: pass e.g. [0.5, 1.0] (a single time as [t]).")
    if not bool((torch.isfinite(t) & (t >= 0)).all()):
        raise ValueError(f"Expected finite times >= 0 (units of dt), got {t.tolist()[:8]}. Fix: predict forward "
                         "in time from the initial state.")
    return t


def _space_features(space: tuple, modes: int, like: torch.Tensor) -> torch.Tensor:
    """``(*space, 2 * modes * ndim)``: ``sin / cos(2 pi k x_i)`` of the cell centres ``x_i`` in [0, 1)."""
    k = torch.arange(1, modes + 1, device=like.device, dtype=like.dtype)
    axes = [(torch.arange(n, device=like.device, dtype=like.dtype) + 0.5) / n for n in space]
    grids = torch.meshgrid(*axes, indexing="ij")
    phase = torch.stack(grids, -1)[..., None] * (2 * math.pi * k)  # (*space, ndim, modes)
    return torch.cat([phase.sin(), phase.cos()], -1).flatten(-2)


def _time_features(t: torch.Tensor, modes: int, scale: float) -> torch.Tensor:
    """``(T, 1 + 2 modes)``: ``t / scale`` and ``sin / cos(pi 2^k t / scale)``, ``k < modes``."""
    s = (t / scale)[:, None]
    if not modes:
        return s
    phase = s * (math.pi * 2.0 ** torch.arange(modes, device=t.device, dtype=t.dtype))
    return torch.cat([s, phase.sin(), phase.cos()], -1)
