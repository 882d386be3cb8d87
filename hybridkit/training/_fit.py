"""One optimisation of learnable coefficients with ``phi.math.minimize``, and what it did.

Parameters are optimised in a bounded, well-scaled form (:mod:`hybridkit.training._transform`):
per number ``value = exp(lo + w sigmoid(4 z / w))`` with ``lo, lo + w = log bounds``
(``transform="log"``; linear without the ``exp``), started strictly inside the bounds. The upper
bound of a non-negative coefficient is lowered only where the explicit scheme cannot integrate
it: with automatic substeps beyond ``max_substeps`` substeps per frame, with a user-set
``substeps`` beyond its stability limit. With ``fit_initial_state`` each window's initial state is
optimised too, unbounded (:mod:`hybridkit.training._initial_state`). The objective is normalised
to 1 at the initial guess so that ``abs_tol`` is relative to the starting misfit. Non-finite
losses are counted; they never become the result. At the optimum the standard errors of the
fitted numbers are estimated (:mod:`hybridkit.training._uncertainty`).
"""
from __future__ import annotations

import contextlib
import time
import warnings

import numpy as np
from phiml import math
from tqdm.auto import tqdm

from .._signals import deferred_interrupts
from ..physics import AUTO, AbstractPDE, LearnableParam, ResolutionWarning
from ._fit_result import FitError, FitResult, FitWarning, failure_text, public
from ._initial_state import InitialStates
from ._transform import BoundedTransform, start_inside, usable_upper
from ._uncertainty import estimate_uncertainty

__all__ = ["FitResult", "FitError", "FitWarning", "run_fit"]

_failure_text, _public = failure_text, public  # the names other modules import


class _Fit:
    """One optimisation: the objective, its bookkeeping, and the verdict."""

    def __init__(self, trainer, problem):
        self.t, self.cfg, self.model = trainer, trainer.config, trainer.model
        self.problem = problem
        self.init = problem.init  # the observed initial states
        self.signal = problem.signal  # mean square of the targets: misfits far below it are round-off
        self.notes: list[str] = []
        self.transforms = {p.name: self._transform(p) for p in trainer.learnables}
        self.states = None
        if getattr(self.cfg, "fit_initial_state", False):
            self.states = InitialStates(problem.init, problem.init_weights, self.cfg.initial_state_weight,
                                        problem.num_observed)
        self.error: BaseException | None = None
        self.evals, self.nonfinite, self.history = 0, 0, []
        self.best = (np.inf, None, np.nan, None)  # objective, params, data loss, state numbers

    # -------------------------------------------------------------- pieces
    def _transform(self, p: LearnableParam) -> BoundedTransform:
        lo, hi = p.lower_upper()
        if self.cfg.clamp_to_stable and p.kind in ("scalar", "field") and float(lo.min()) >= 0:
            hi = np.full_like(hi, usable_upper(p, float(lo.min()), float(hi.max()), self._needs(p), self.model,
                                               self.notes.append))
        return BoundedTransform(lo, hi, p.transform == "log", as_tensor=lambda a: p.numbers(self.model, a))

    def _needs(self, p: LearnableParam):
        """``value -> substeps one frame needs`` with ``p`` uniformly at ``value`` (the others current)."""
        others = self.t.param_tensors()

        def needs(v):
            params = {**others, p.name: p.tensor(self.model, np.full(p.value.shape, v))}
            return self.problem.required_substeps(params)
        return needs

    def unpack(self, zs):
        """``(params, initial states or None)`` from the optimiser's variables."""
        k = len(self.t.learnables)
        params = {p.name: p.coefficient(self.model, self.transforms[p.name].forward(z))
                  for p, z in zip(self.t.learnables, zs[:k])}
        return params, (self.states.states(zs[k:]) if self.states is not None else None)

    def losses(self, params: dict, init: dict | None = None):
        """(data loss, penalty: regulariser + initial-state misfit) as phiml scalars; NaN at a
        trial point that needs more substeps than the model's ``max_substeps``."""
        try:
            data, reg = self.problem.losses(params, init)
        except OverflowError:
            return math.tensor(np.nan), 0.0
        if init is not None:
            reg = reg + self.states.misfit(init)
        return data, reg

    # -------------------------------------------------------------- run
    def run(self) -> FitResult:
        t0 = time.perf_counter()
        z0 = tuple(self._z(p, start_inside(p, self.t._values[p.name], self.transforms[p.name], self.notes.append))
                   for p in self.t.learnables)
        if self.states is not None:
            z0 = z0 + self.states.z0()
        data0, reg0 = (_float(x) for x in self.losses(*self.unpack(z0)))
        self.scale = data0 if np.isfinite(data0) and data0 > 0 else 1.0
        self.obj0 = (data0 + reg0) / self.scale
        start = self._public_params(z0)
        if not np.isfinite(self.obj0):
            self.notes.insert(0, "the loss at the initial guess is not finite: the model is unstable with "
                                 "these parameters / this dt (check dt, substeps and the bounds)")
            return self._result(start, data0, data0, 0, "diverged", "", t0, z0)
        self.best = (self.obj0, start, data0, z0)
        if reg0 == 0 and self._at_floor(data0):
            return self._result(start, data0, data0, 0, self._identified("converged", start, z0),
                                "the initial guess fits the data to float precision", t0, z0)
        info = self._minimize(z0)
        if isinstance(self.error, Exception):
            raise RuntimeError(f"The loss raised inside the optimiser: {self.error!r}") from self.error
        if self.error is not None:  # KeyboardInterrupt / SystemExit: as they were
            raise self.error
        status = self._verdict(info)
        if self.deferral.pending is not None:  # a signal whose handler did not raise ended the optimiser early
            self.notes.append(f"stopped early by signal {self.deferral.pending}")
            status = "not_converged" if status == "converged" else status
        obj, params, data, zs = self.best
        if status in ("converged", "not_converged"):
            status = self._identified(status, params, zs)
        return self._result(params, data, data0, int(info.iterations.numpy().max()), status, _msg(info), t0, zs)

    def _minimize(self, z0):
        bar = tqdm(desc="fit", unit="eval", disable=not self.t._progress, leave=False)
        self.bar = bar
        solve = math.Solve(self.cfg.method, 0, self.cfg.abs_tol, x0=z0, max_iterations=self.cfg.max_iterations,
                           suppress=(math.NotConverged, math.Diverged))
        try:
            # Ctrl-C / SIGTERM during the optimisation wait for the optimiser to end (see objective)
            with deferred_interrupts() as self.deferral, math.SolveTape(record_trajectories=False) as tape:
                math.minimize(self.objective, solve)
        finally:
            bar.close()
        return tape[0]

    def objective(self, *zs):
        """Normalised loss; never raises: an exception (or Ctrl-C) inside phiml's minimize would leave
        its worker thread waiting forever. An error is stored and :meth:`run` re-raises it; a signal
        that arrives outside this function waits (:func:`~hybridkit._signals.deferred_interrupts`).
        Either way every later call returns 0 with a zero gradient, where any gradient-based
        optimiser stops at its next test (one evaluation for SciPy's, measured; NaN took 36 to
        1089), and the result of such a run is never used."""
        zero = sum(math.sum(z, z.shape) for z in zs) * 0  # keeps the output connected to the input
        deferral = getattr(self, "deferral", None)
        if self.error is not None or (deferral is not None and deferral.pending is not None):
            return zero
        try:
            with deferral.immediate() if deferral is not None else contextlib.nullcontext():
                params, init = self.unpack(zs)
                data, reg = self.losses(params, init)
                obj = (data + reg) / self.scale + zero
                val = _float(obj)
        except BaseException as e:  # noqa: BLE001  (Ctrl-C too; re-raised after minimize returns)
            self.error = e
            return zero
        self.evals += 1
        self.history.append(val)
        if not np.isfinite(val):
            self.nonfinite += 1
        elif val < self.best[0]:
            self.best = (val, self._public_params(zs), _float(data), tuple(math.stop_gradient(z) for z in zs))
        self.bar.update(1)
        self.bar.set_postfix(rel_loss=f"{self.best[0]:.3e}", refresh=False)
        return obj

    def _verdict(self, info) -> str:
        improved = self.best[0] < self.obj0
        last_bad = bool(self.history) and not np.isfinite(self.history[-1])
        if not np.isfinite(self.best[0]):
            return "diverged"
        if self.nonfinite:
            self.notes.append(f"{self.nonfinite} of {self.evals} evaluations were not finite (unstable trial points)")
        if not self._stable(self.best[1]):
            self.notes.append(f"the result is beyond what the explicit scheme can integrate at dt={self.model.dt:g}")
            return "diverged"
        if info.converged.all:
            if self.nonfinite and not improved:
                self.notes.append("the optimiser stopped at the initial guess after non-finite evaluations")
                return "not_converged"
            return "not_converged" if self._on_bounds(self.best[1]) else "converged"
        if last_bad:
            return "diverged"
        ran_out = int(info.iterations.numpy().max()) >= self.cfg.max_iterations
        if not ran_out and (self._at_floor(self.best[2]) or self._flat_at_end()) and not self._on_bounds(self.best[1]):
            self.notes.append("the line search stopped at float round-off of the misfit")
            return "converged"
        self._on_bounds(self.best[1])
        return "not_converged"

    def _identified(self, status: str, params: dict, zs) -> str:
        """``status``, or ``"not_identifiable"`` when the data do not constrain some number."""
        self.uncertainty = None
        if not getattr(self.cfg, "uncertainty", True):
            return status
        states = self._states_of(zs)
        self.uncertainty = u = estimate_uncertainty(self, params, states)
        self.notes.extend(u.notes)
        if u.unidentified:
            self.notes.append(f"not identifiable: the data do not constrain {', '.join(u.unidentified)} (standard "
                              "deviation above a quarter of the range; e.g. constant states, or an unobserved region)")
        return "not_identifiable" if u.unidentified and status == "converged" else status

    def _flat_at_end(self, last: int = 4) -> bool:
        """Whether the line search ended probing points whose objectives agree to float round-off
        (a noisy misfit's minimum in float32: scipy's tolerance is finer than the arithmetic)."""
        tail = [v for v in self.history[-last:] if np.isfinite(v)]
        eps = np.finfo(np.float64 if math.get_precision() == 64 else np.float32).eps
        return len(tail) == last and max(tail) - min(tail) <= 100 * eps * abs(self.best[0])

    def _at_floor(self, data_loss: float) -> bool:
        """Whether a misfit is float round-off: below ``(10 eps)^2`` times the targets' mean square."""
        eps = np.finfo(np.float64 if math.get_precision() == 64 else np.float32).eps
        return bool(data_loss <= (10 * eps) ** 2 * self.signal)

    def _tensors(self, params: dict) -> dict:
        return {p.name: p.tensor(self.model, params[p.name]) for p in self.t.learnables}

    def _stable(self, params: dict) -> bool:
        cap = self.model.max_substeps if self.model.substeps == AUTO else int(self.model.substeps)
        return self.problem.required_substeps(self._tensors(params)) <= cap

    def _on_bounds(self, params: dict) -> bool:
        """Note parameters stuck on a bound; True when that makes the result untrustworthy."""
        bad = False
        for p in self.t.learnables:
            hit = self.transforms[p.name].at_bound(params[p.name])
            if not np.any(hit):
                continue
            if p.kind == "field" and not np.all(hit):
                self.notes.append(f"{int(hit.sum())} of {hit.size} cells of {p.name!r} are on a bound")
                continue
            bad = True
            self.notes.append(f"{p.name!r} is on a bound of {self._range(p)}: the data want a value outside it "
                              "(widen the bounds, or check the model and dt)")
        return bad

    def _bounds_of(self, p: LearnableParam) -> tuple:
        lo, hi = self.transforms[p.name].bounds
        if np.ptp(lo) == 0 and np.ptp(hi) == 0:
            return float(np.ravel(lo)[0]), float(np.ravel(hi)[0])
        return np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)

    def _range(self, p: LearnableParam) -> str:
        lo, hi = self._bounds_of(p)
        return f"[{np.min(lo):.4g}, {np.max(hi):.4g}]"

    # -------------------------------------------------------------- helpers
    def _z(self, p: LearnableParam, value: np.ndarray) -> math.Tensor:
        z = self.transforms[p.name].inverse(value)
        return p.numbers(self.model, z)

    def _public_params(self, zs) -> dict:
        out = {}
        for p, z in zip(self.t.learnables, zs):
            v = self.transforms[p.name].forward(z)
            out[p.name] = public(_numpy(v, p, self.model))
        return out

    def _states_of(self, zs):
        if self.states is None or zs is None:
            return None
        return self.states.states(tuple(math.stop_gradient(z) for z in zs[len(self.t.learnables):]))

    def _after(self, params: dict, zs) -> dict:
        """What the result says besides the numbers: regulariser, initial states, resolution."""
        tensors = self._tensors(params)
        states = self._states_of(zs)
        extra = {"reg_loss": _float(self.problem.regulariser(tensors)),
                 "substeps": int(min(self.problem.substeps_needed(tensors, states), self.model.max_substeps))}
        if states is not None:
            extra["initial_state_loss"] = self.states.mse(states)
            extra["initial_states"] = self.states.numpy(states, self.model)
        issue = self.model.resolution_issue(self.init if states is None else states, tensors)
        if issue:
            warnings.warn(f"At the fitted coefficients: {issue}", ResolutionWarning, stacklevel=5)
            self.notes.append(f"under-resolved at the fitted coefficients: {issue}")
        u = getattr(self, "uncertainty", None)
        if u is not None:
            extra.update(std=u.std, field_std=u.field_std, covariance=u.covariance, noise_std=u.noise_std,
                         residual_correlation=u.residual_correlation, unidentified=u.unidentified,
                         unconstrained=u.unconstrained)
        return extra

    def _result(self, params, data, data0, iterations, status, msg, t0, zs) -> FitResult:
        extra = self._after(params, zs) if np.isfinite(data) else {}
        message = "; ".join([m for m in [msg] + self.notes if m])
        return FitResult(params=params, final_loss=float(data), initial_loss=float(data0), iterations=iterations,
                         evaluations=self.evals, status=status, message=message,
                         seconds=time.perf_counter() - t0, num_samples=self.problem.num_samples,
                         nonfinite_evaluations=self.nonfinite, loss_history=list(self.history),
                         bounds={p.name: self._bounds_of(p) for p in self.t.learnables}, epoch=self.t.epoch + 1,
                         **extra)


def run_fit(trainer, problem) -> FitResult:
    """Minimise ``problem.losses`` over ``trainer``'s learnables (and, with ``fit_initial_state``,
    the initial states), starting from its current estimate; returns the :class:`FitResult` (the
    caller decides whether to adopt it).

    Args:
        trainer: a :class:`~hybridkit.training.FieldTrainer` (learnables, current values, model,
            config with ``method``, ``abs_tol``, ``max_iterations``, ``clamp_to_stable``).
        problem: a :class:`~hybridkit.training._misfit.RolloutProblem` (``losses``, ``init``,
            ``signal``, ``num_samples``, the substeps a point needs).
    """
    return _Fit(trainer, problem).run()


def _float(x) -> float:
    if isinstance(x, math.Tensor):
        n = x.native()
        return float(n.detach().cpu()) if hasattr(n, "detach") else float(n)
    return float(x)


def _numpy(v: math.Tensor, p: LearnableParam, model: AbstractPDE) -> np.ndarray:
    order = {"field": list(model.grid.axes), "vector": ["vector"], "parametric": ["param"]}.get(p.kind, [])
    n = v.native(order)
    return np.asarray(n.detach().cpu().numpy() if hasattr(n, "detach") else n, dtype=np.float64)


def _msg(info) -> str:
    m = info.msg
    if isinstance(m, (list, tuple)):
        m = "; ".join(str(x) for x in m)
    return str(m)
