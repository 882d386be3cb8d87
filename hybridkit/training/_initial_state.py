"""The initial states of a fit's windows as unknowns too (errors-in-variables, as in 4D-Var).

A rollout from a noisy initial state carries the noise along: fitted to the later frames, the
coefficients absorb it (a viscosity that smooths the noise away fast comes out several times too
large). Fitting each window's initial state ``u_0`` together with the coefficients removes that
bias: the data term becomes the misfit over *all* observed frames, the initial one included,

.. math:: \\frac{1}{N_T} \\Big[\\sum_{t \\ge 1} \\| w (u_t(u_0, \\lambda) - y_t) \\|^2
          + w_0 \\| m (u_0 - y_0) \\|^2 \\Big]

with ``m`` where the initial state is observed (the spatial observation mask) and ``w_0`` the
weight of one observed initial point relative to a target point (1: the same noise in every
frame). Where the initial state is unobserved only the dynamics constrain it.

The optimiser moves ``z = (u_0 - y_0) / s`` (``s`` the RMS of the observed initial values, so
``z = 0`` at the observation and a unit step is about the data's size), unbounded and linear;
all windows' states are one problem with the coefficients (one ``math.minimize``, batched).
"""
from __future__ import annotations

import numpy as np
from phiml import math
from phiml.math import batch, instance

__all__ = ["InitialStates"]

_SAMPLE = "sample_"  # the batch dim of the states, renamed: phiml's minimize takes batch dims as separate problems


class InitialStates:
    """The unknown initial states of a fit: ``u_0 = y_0 + s z``.

    Args:
        init: the observed initial states ``name -> (batch, *space[, vector])``.
        weights: where they are observed, broadcasting against them (None: everywhere).
        weight: ``w_0``, the weight of an observed initial point relative to a target point.
        num_target_points: ``N_T``, observed target points (the data term's normaliser).
    """

    def __init__(self, init: dict, weights, weight: float, num_target_points: int):
        self.observed = init
        self.weights = weights
        self.weight = float(weight)
        self.norm = float(num_target_points)
        self.scale = {k: max(_rms(v, weights), 1e-30) for k, v in init.items()}
        self.count = sum(_count(weights, v.shape) for v in init.values())  # observed initial points
        self.num_numbers = int(sum(v.shape.volume for v in init.values()))

    def z0(self) -> tuple:
        """Start: the observed states (``z = 0``), one tensor per field, without batch dims."""
        return tuple(_unbatch(v * 0) for v in self.observed.values())

    def states(self, zs) -> dict:
        """``name -> (batch, *space[, vector])`` from the optimiser's ``zs``."""
        return {k: self.observed[k] + self.scale[k] * _rebatch(z) for k, z in zip(self.observed, zs)}

    def misfit(self, states: dict) -> math.Tensor:
        """``w_0 || m (u_0 - y_0) ||^2 / N_T`` (0 with ``weight = 0``)."""
        if self.weight == 0:
            return 0.0
        sse = sum(math.sum(_w(self.weights) * (states[k] - self.observed[k]) ** 2, states[k].shape)
                  for k in self.observed)
        return self.weight * sse / self.norm

    def mse(self, states: dict) -> float:
        """Mean squared change of the observed initial points (how far the fit moved them)."""
        if not self.count:
            return 0.0
        sse = sum(float(math.sum(_w(self.weights) * (states[k] - self.observed[k]) ** 2, states[k].shape))
                  for k in self.observed)
        return sse / self.count

    def residuals(self, states: dict) -> dict:
        """``name -> sqrt(w_0 m) (u_0 - y_0)``: the initial points' part of the residual vector."""
        return {k: np.sqrt(self.weight) * math.sqrt(_w(self.weights)) * (states[k] - self.observed[k])
                for k in self.observed}

    def numpy(self, states: dict, model) -> dict:
        """``name -> numpy (batch, *space[, vector])`` (float64)."""
        out = {}
        for k, v in states.items():
            order = (["batch"] if "batch" in v.shape else []) + list(model.grid.axes) + \
                    (["vector"] if "vector" in v.shape else [])
            out[k] = np.asarray(v.numpy(order), dtype=np.float64)
        return out


def _w(weights):
    return 1.0 if weights is None else weights


def _rms(v: math.Tensor, weights) -> float:
    w = _w(weights)
    n = _count(weights, v.shape)
    return float(math.sqrt(math.sum(w * v**2, v.shape) / max(n, 1)))


def _count(weights, shape) -> float:
    if weights is None:
        return float(shape.volume)
    return float(math.sum(math.expand(weights, shape), shape))


def _unbatch(v: math.Tensor) -> math.Tensor:
    return math.rename_dims(v, "batch", instance(_SAMPLE)) if "batch" in v.shape else v


def _rebatch(z: math.Tensor) -> math.Tensor:
    return math.rename_dims(z, _SAMPLE, batch("batch")) if _SAMPLE in z.shape else z
