"""The physical fit's objective: the masked misfit of a rollout to observed frames, plus smoothness.

.. math:: L(\\lambda, u_0) = \\mathrm{MSE}_w(\\mathrm{rollout}_\\lambda(u_0), u_{1..T})
          + w_0 \\frac{N_0}{N_T} \\mathrm{MSE}_{w_0}(u_0, y_0) + \\beta R(\\lambda)

with ``MSE_w`` the mean over observed points (:func:`hybridkit.data.masked_mse`), ``R`` a
smoothness penalty of field coefficients (:func:`hybridkit.physics.smoothness_penalty`) and the
middle term only when the initial states ``u_0`` are fitted too (errors-in-variables, see
:mod:`hybridkit.training._initial_state`): each observed point of an initial state then weighs
``w_0`` times as much as an observed target point.

**Time steps.** Every evaluation rolls out with one number of RK3 substeps ``n`` per frame,
chosen from the explicit limit at the evaluation's coefficients and states
(:meth:`RolloutProblem.substeps_needed`), so a fit may move over a range that needs 1 or 50
substeps per frame. The compiled blocks of substeps take the substep length as an input and are
shared by all models of one :attr:`~hybridkit.physics.AbstractPDE.trace_key`
(:func:`compiled_misfit`): torch never frees a trace, so one per model (or per ``n``) leaked.
"""
from __future__ import annotations

import copy
import math as pymath
import torch
from phiml import math
from phiml.math import batch

from ..data import masked_mse, observed_count
from ..physics import AUTO, AbstractPDE, shared_jit, smoothness_penalty

__all__ = ["rollout_misfit", "compiled_misfit", "RolloutProblem", "predictions", "to_float"]


def predictions(model: AbstractPDE, init: dict, steps: int, params: dict, substeps: int | None = None) -> dict:
    """``name -> (batch, time, *space)``: ``steps`` frames of ``model`` from ``init`` (frame 0 excluded)."""
    values = dict(init)
    frames = {k: [] for k in model.field_names}
    for _ in range(steps):
        values = model.step_values(values, params, substeps=substeps)
        for k in frames:
            frames[k].append(values[k])
    return {k: math.stack(f, batch("time")) for k, f in frames.items()}


def rollout_misfit(model: AbstractPDE, init: dict, tgt: dict, params: dict, weights, counts, *,
                   substeps: int | None = None) -> math.Tensor:
    """Masked MSE between ``model``'s rollout from ``init`` and the targets (``time`` frames).

    Args:
        substeps: RK3 substeps per frame; None: the model's own choice per step.
    """
    steps = next(iter(tgt.values())).shape.get_size("time")
    pred = predictions(model, init, steps, params, substeps)
    return masked_mse({k: pred[k] for k in tgt}, tgt, weights, counts)


#: substeps per compiled block (a trace's cost grows with its length, the cost per substep does
#: not fall beyond a few)
BLOCK = 4


def compiled_misfit(model: AbstractPDE, substeps: int, device=None):
    """``(init, tgt, params, weights, counts) -> misfit``: :func:`rollout_misfit` with ``substeps``
    substeps of ``dt / substeps`` per frame, each frame in compiled blocks of at most :data:`BLOCK`
    substeps (``phiml.math.jit_compile``) when the model is jitted, else as is.

    The substep length is an *input* of the compiled blocks, so one trace per block size serves
    every number of substeps: a fit whose coefficients move from needing 1 to 50 substeps per frame
    traces once, and the blocks are shared by all models of ``model.trace_key`` (on this device and
    precision; :func:`~hybridkit.physics.shared_jit}`) -- torch never frees a trace, so compiling per
    model or per number of substeps leaked. Measured on 1D Burgers (64-128 cells, 10-20 frames): a
    whole rollout traced as one function evaluated no faster once warm (37 vs 38 ms, 553 vs 341 ms)
    and took 4-90 s to trace and warm up, once per number of substeps. ``params`` must hold every
    parameter of the model (``model.prepare_params``).
    """
    if not getattr(model, "jit", False):
        return lambda init, tgt, params, weights, counts: rollout_misfit(
            model, init, tgt, params, weights, counts, substeps=substeps)
    sizes = [BLOCK] * (substeps // BLOCK) + ([substeps % BLOCK] if substeps % BLOCK else [])
    blocks = {k: shared_jit((model.trace_key, "substeps(h)", k, math.get_precision(), device),
                            lambda k=k: _compile_block(copy.copy(model), k)) for k in set(sizes)}
    h = math.tensor(model.dt / substeps)

    def misfit(init, tgt, params, weights, counts):
        values = dict(init)
        frames = {k: [] for k in tgt}
        for _ in range(next(iter(tgt.values())).shape.get_size("time")):
            for k in sizes:
                values = blocks[k](values, params, h)
            for k in frames:
                frames[k].append(values[k])
        return masked_mse({k: math.stack(f, batch("time")) for k, f in frames.items()}, tgt, weights, counts)
    return misfit


def _compile_block(model: AbstractPDE, size: int):
    """``size`` substeps of length ``h`` (an input) of a private copy of ``model`` (the table must
    not keep the caller's model alive), compiled."""
    def block(values, params, h):
        for _ in range(size):
            values = model.substep_values(values, params, h)
        return values
    return math.jit_compile(block)


class RolloutProblem:
    """What one physical fit minimises: ``losses(params) -> (data misfit, weighted regulariser)``.

    Args:
        model: the physical model.
        init: ``name -> tensor (batch, *space[, vector])``, every field of the model.
        tgt: ``name -> tensor (batch, time, *space[, vector])``.
        weights: 0/1 (or real) observation weights broadcasting against the targets, or None.
        learnables: the trainer's learnable parameters (which of them are fields).
        regularizer, reg_weight: the smoothness penalty of field parameters and its weight.
        init_weights: where the initial states are observed (weights broadcasting against
            ``init``; None: everywhere); read only when the initial states are fitted.
    """

    def __init__(self, model: AbstractPDE, init: dict, tgt: dict, weights, learnables, *,
                 regularizer: str | None = None, reg_weight: float = 0.0, init_weights=None):
        self.model, self.init, self.tgt, self.weights = model, init, tgt, weights
        self.init_weights = init_weights
        self.fields = [p.name for p in learnables if p.kind in ("field", "parametric")]
        self.regularizer, self.reg_weight = regularizer, float(reg_weight)
        self.counts = None if weights is None else {k: observed_count(weights, v.shape) for k, v in tgt.items()}
        # the counts as tensors: traced inputs of the compiled misfit, not constants baked into a trace
        self._counts_t = None if self.counts is None else {k: math.tensor(float(c)) for k, c in self.counts.items()}
        self.steps = next(iter(tgt.values())).shape.get_size("time")
        first = next(iter(init.values()))
        self._device = first.device.ref if isinstance(first, math.Tensor) and first.device is not None else None
        self.last_substeps = None  # n of the latest evaluation

    @property
    def signal(self) -> float:
        """Mean square of the observed targets (misfits far below it are float round-off)."""
        return to_float(masked_mse(self.tgt, {k: v * 0 for k, v in self.tgt.items()}, self.weights, self.counts))

    @property
    def num_samples(self) -> int:
        """Trajectories fitted together (the ``batch`` size)."""
        v = next(iter(self.init.values()))
        return v.shape.get_size("batch") if "batch" in v.shape else 1

    @property
    def num_observed(self) -> int:
        """Observed target points (summed over fields)."""
        if self.counts is not None:
            return int(round(sum(self.counts.values())))
        return int(sum(v.shape.volume for v in self.tgt.values()))

    # ------------------------------------------------------------------ time steps
    def one_substep_limit(self, params: dict, init: dict | None = None) -> float:
        """The explicit limit of one RK3 substep at ``params`` over the initial states and targets."""
        model, p = self.model, _detached(model_params(self.model, params))
        values = _detached(self.init if init is None else init)
        limit = model.max_stable_dt(values, p) / _substeps_factor(model)
        if model.limit_depends_on_state:  # e.g. advection by the evolving field: its largest observed speed
            limit = min(limit, model.max_stable_dt(_detached(self.tgt_state()), p) / _substeps_factor(model))
        return float(limit)

    def substeps_needed(self, params: dict, init: dict | None = None) -> int:
        """The substeps per frame a rollout at ``params`` takes: a model's integer ``substeps`` as set,
        else :meth:`required_substeps`."""
        if self.model.substeps != AUTO:
            return int(self.model.substeps)
        return self.required_substeps(params, init)

    def required_substeps(self, params: dict, init: dict | None = None) -> int:
        """``ceil(dt / limit)`` (1 where one substep is stable) at ``params``, whatever the model's setting."""
        limit = self.one_substep_limit(params, init)
        ratio = self.model.dt / limit if limit > 0 else float("inf")
        if ratio <= 1:
            return 1
        return pymath.ceil(ratio) if pymath.isfinite(ratio) else 2**62

    def _hysteresis(self, needed: int) -> int:
        """The substeps of this evaluation: more as soon as they are needed, fewer only once half as
        many suffice. A different ``n`` changes the time discretisation, so the misfit jumps a little
        where ``n`` switches; without the band an optimum near a switch point (data exactly at a
        multiple of the limit) would flip ``n`` at every line-search step (measured: 22 evaluations
        instead of 7)."""
        last = self.last_substeps
        if last is None or needed > last or needed <= last // 2:
            return needed
        return last

    def tgt_state(self) -> dict:
        """The targets as a state (``time`` is one more batch dim), for the limit of the observed speeds."""
        return {k: self.tgt.get(k, self.init[k]) for k in self.model.field_names}

    # ------------------------------------------------------------------ the loss
    def losses(self, params: dict, init: dict | None = None):
        """(data loss, weighted regulariser) as phiml scalars at ``params`` (name -> tensor), rolled
        out from ``init`` (default: the observed initial states).

        Raises:
            OverflowError: more substeps than the model's ``max_substeps`` would be needed (an
                unstable trial point; the fit counts it as non-finite).
        """
        n = self._hysteresis(self.substeps_needed(params, init))
        if n > self.model.max_substeps and self.model.substeps == AUTO:
            raise OverflowError(n)
        self.last_substeps = n
        full = model_params(self.model, params)
        data = compiled_misfit(self.model, n, self._device)(self.init if init is None else init, self.tgt, full, self.weights, self._counts_t)
        return data, self.regulariser(params)

    def regulariser(self, params: dict):
        """The weighted smoothness penalty of the field coefficients (0 without a regulariser)."""
        reg = 0.0
        if self.regularizer:
            for name in self.fields:
                reg = reg + smoothness_penalty(params[name], self.regularizer, self.model)
            reg = self.reg_weight * reg
        return reg

    def data_loss(self, params: dict, init: dict | None = None) -> float:
        """The data misfit (masked MSE over observed target points) at ``params``, not compiled."""
        n = self.substeps_needed(params, init)
        return to_float(rollout_misfit(self.model, self.init if init is None else init, self.tgt,
                                       model_params(self.model, params), self.weights, self.counts,
                                       substeps=min(n, self.model.max_substeps)))

    def residuals(self, params: dict, init: dict | None = None, substeps: int | None = None) -> dict:
        """``name -> sqrt(w) (prediction - target)`` at ``params`` (no gradient): what the uncertainty
        of a fit is computed from. ``substeps``: default, as :meth:`losses` chooses."""
        n = self.substeps_needed(params, init) if substeps is None else substeps
        with torch.no_grad():
            pred = predictions(self.model, self.init if init is None else init, self.steps,
                               model_params(self.model, params), min(n, self.model.max_substeps))
        w = 1.0 if self.weights is None else math.sqrt(self.weights)
        return {k: w * (pred[k] - self.tgt[k]) for k in self.tgt}


def model_params(model: AbstractPDE, params: dict) -> dict:
    """Every parameter of ``model`` as a tensor: ``params`` plus the model's own values of the rest."""
    return model.prepare_params(params)


def _detached(tensors: dict) -> dict:
    return {k: math.stop_gradient(v) if isinstance(v, math.Tensor) else v for k, v in tensors.items()}


def _substeps_factor(model) -> int:
    """``max_stable_dt`` is ``substeps * limit`` for an integer ``substeps``, the one-substep limit with auto."""
    return 1 if model.substeps == AUTO else int(model.substeps)


def to_float(x) -> float:
    """A phiml / torch scalar as a Python float."""
    if isinstance(x, math.Tensor):
        n = x.native()
        return float(n.detach().cpu()) if hasattr(n, "detach") else float(n)
    return float(x)
