"""The physical fit's objective: the masked misfit of a rollout to observed frames, plus smoothness.

.. math:: L(\\lambda) = \\mathrm{MSE}_w(\\mathrm{rollout}_\\lambda(u_0), u_{1..T})
          + \\beta R(\\lambda)

with ``MSE_w`` the mean over observed points (:func:`hybridkit.data.masked_mse`) and ``R`` a
smoothness penalty of field coefficients (:func:`hybridkit.physics.smoothness_penalty`).
"""
from __future__ import annotations

import warnings
import weakref

from phiml import math
from phiml.math import batch

from ..data import masked_mse, observed_count
from ..physics import AbstractPDE, smoothness_penalty

__all__ = ["rollout_misfit", "compiled_misfit", "RolloutProblem"]


def rollout_misfit(model: AbstractPDE, init: dict, tgt: dict, params: dict, weights, counts) -> math.Tensor:
    """Masked MSE between ``model``'s rollout from ``init`` and the targets (``time`` frames)."""
    values = dict(init)
    steps = next(iter(tgt.values())).shape.get_size("time")
    frames = {k: [] for k in tgt}
    for _ in range(steps):
        values = model.step_values(values, params)
        for k in frames:
            frames[k].append(values[k])
    pred = {k: math.stack(f, batch("time")) for k, f in frames.items()}
    return masked_mse(pred, tgt, weights, counts)


_COMPILED: "weakref.WeakKeyDictionary[AbstractPDE, object]" = weakref.WeakKeyDictionary()


def compiled_misfit(model: AbstractPDE):
    """``(init, tgt, params, weights, counts) -> misfit``: :func:`rollout_misfit` of ``model``
    compiled as one function (``phiml.math.jit_compile``) when the model is jitted, else as is.

    One trace covers the whole rollout and the loss, so a loss evaluation is one call into the
    traced graph instead of one jitted call per step plus the stacking of the frames in Python
    (see the physical-fit row of ``benchmarks/``). Cached per model; a new batch size or rollout
    length retraces once (only the latest trace is kept).
    """
    if not getattr(model, "jit", False):
        return lambda init, tgt, params, weights, counts: rollout_misfit(model, init, tgt, params, weights, counts)
    fn = _COMPILED.get(model)
    if fn is None:
        ref = weakref.ref(model)  # the cache must not keep the model alive

        def misfit(init, tgt, params, weights, counts):  # runs only while tracing
            with warnings.catch_warnings():
                # the step's own jit is inlined into this trace, which is the point
                warnings.filterwarnings("ignore", message="PyTorch does not support nested tracing")
                return rollout_misfit(ref(), init, tgt, params, weights, counts)

        fn = _COMPILED[model] = math.jit_compile(misfit, forget_traces=True)
    return fn


class RolloutProblem:
    """What one physical fit minimises: ``losses(params) -> (data misfit, weighted regulariser)``.

    Args:
        model: the physical model.
        init: ``name -> tensor (batch, *space[, vector])``, every field of the model.
        tgt: ``name -> tensor (batch, time, *space[, vector])``.
        weights: 0/1 (or real) observation weights broadcasting against the targets, or None.
        learnables: the trainer's learnable parameters (which of them are fields).
        regularizer, reg_weight: the smoothness penalty of field parameters and its weight.
    """

    def __init__(self, model: AbstractPDE, init: dict, tgt: dict, weights, learnables, *,
                 regularizer: str | None = None, reg_weight: float = 0.0):
        self.model, self.init, self.tgt, self.weights = model, init, tgt, weights
        self.fields = [p.name for p in learnables if p.kind == "field"]
        self.regularizer, self.reg_weight = regularizer, float(reg_weight)
        self.counts = None if weights is None else {k: observed_count(weights, v.shape) for k, v in tgt.items()}
        # the counts as tensors: traced inputs of the compiled misfit, not constants baked into a trace
        self._counts_t = None if self.counts is None else {k: math.tensor(float(c)) for k, c in self.counts.items()}
        self._misfit = compiled_misfit(model)

    @property
    def signal(self) -> float:
        """Mean square of the observed targets (misfits far below it are float round-off)."""
        return to_float(masked_mse(self.tgt, {k: v * 0 for k, v in self.tgt.items()}, self.weights, self.counts))

    @property
    def num_samples(self) -> int:
        """Trajectories fitted together (the ``batch`` size)."""
        v = next(iter(self.init.values()))
        return v.shape.get_size("batch") if "batch" in v.shape else 1

    def losses(self, params: dict):
        """(data loss, weighted regulariser) as phiml scalars at ``params`` (name -> tensor)."""
        data = self._misfit(self.init, self.tgt, params, self.weights, self._counts_t)
        reg = 0.0
        if self.regularizer:
            for name in self.fields:
                reg = reg + smoothness_penalty(params[name], self.regularizer, self.model)
            reg = self.reg_weight * reg
        return data, reg


def to_float(x) -> float:
    """A phiml / torch scalar as a Python float."""
    if isinstance(x, math.Tensor):
        n = x.native()
        return float(n.detach().cpu()) if hasattr(n, "detach") else float(n)
    return float(x)
