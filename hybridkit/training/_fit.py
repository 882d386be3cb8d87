"""One optimisation of learnable coefficients with ``phi.math.minimize``, and what it did.

Parameters are optimised in a bounded, well-scaled form: ``value = exp(lo + w sigmoid(4 z / w))``
with ``lo, lo + w = log bounds`` (``transform="log"``; linear without the ``exp``). Near the
middle of the range a unit step in ``z`` is a unit step in ``log value``; no step can leave the
bounds, and the upper bound is lowered to the model's explicit stability limit when it is beyond.
The objective is normalised to 1 at the initial guess so that ``abs_tol`` is relative to the
starting misfit. Non-finite losses are counted; they never become the result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
from phiml import math
from tqdm.auto import tqdm

from .._signals import deferred_interrupts
from ..physics import AbstractPDE, LearnableParam

__all__ = ["FitResult", "FitError", "FitWarning", "run_fit"]


@dataclass(frozen=True)
class FitResult:
    """What one fit did.

    Attributes:
        params: ``name -> float`` (scalar) or ``numpy`` array (field ``resolution`` / vector
            ``(ndim,)``): the best finite point found (for ``"diverged"``: not adopted).
        final_loss, initial_loss: data misfit (masked MSE over observed points) at the result and
            at the initial guess; ``reg_loss``: the weighted regulariser at the result.
        iterations, evaluations: optimiser iterations and loss evaluations (with gradient).
        status: ``"converged"``, ``"not_converged"`` or ``"diverged"``.
        message: the optimiser's message plus what the trainer noticed.
        seconds: wall time of the fit; ``num_samples``: trajectories fitted together.
        bounds: ``name -> (low, high)`` the optimiser was confined to (the upper bound possibly
            lowered to the stability limit).
        loss_history: the normalised objective at every evaluation (1 at the initial guess).
        epoch: the fit's number in its trainer's history.
    """

    params: dict
    final_loss: float
    initial_loss: float
    iterations: int
    evaluations: int
    status: str
    message: str
    seconds: float
    num_samples: int
    reg_loss: float = 0.0
    nonfinite_evaluations: int = 0
    bounds: dict = field(default_factory=dict)
    loss_history: list = field(default_factory=list, repr=False)  # normalised objective per evaluation
    epoch: int = 0  # the trainer's epoch (fit) number this result belongs to, 1 for the first fit

    @property
    def converged(self) -> bool:
        """Whether the optimiser met its tolerance at a finite, in-bounds, stable point."""
        return self.status == "converged"

    @property
    def loss(self) -> float:
        """The data misfit at the result (``final_loss``): the record's loss in a history."""
        return self.final_loss

    def to_dict(self) -> dict:
        """Plain data (arrays as nested lists) for JSON and checkpoints."""
        d = dataclasses.asdict(self)
        d["params"] = {k: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()) for k, v in self.params.items()}
        d["bounds"] = {k: [float(b) for b in v] for k, v in self.bounds.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FitResult":
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        d["params"] = {k: (float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64))
                       for k, v in d["params"].items()}
        d["bounds"] = {k: tuple(float(b) for b in v) for k, v in d.get("bounds", {}).items()}
        d["loss_history"] = list(d.get("loss_history", []))
        return cls(**d)


class FitError(RuntimeError):
    """A fit diverged or did not converge (``on_failure="raise"``); ``.result`` says how."""

    def __init__(self, result: FitResult):
        super().__init__(_failure_text(result))
        self.result = result


class FitWarning(UserWarning):
    """A fit diverged or did not converge (``on_failure="warn"``)."""


class _BoundedTransform:
    """``value = T^-1(lo + w sigmoid(4 z / w))``, ``T = log`` or identity: bounded, slope 1 mid-range."""

    def __init__(self, low: float, high: float, log: bool):
        self.log = log
        self.lo, hi = (np.log(low), np.log(high)) if log else (low, high)
        self.w = hi - self.lo

    def forward(self, z: math.Tensor) -> math.Tensor:
        s = self.lo + self.w * math.sigmoid(4 * z / self.w)
        return math.to_float(math.exp(s) if self.log else s)

    def fraction(self, value) -> np.ndarray:
        """Position of ``value`` in its range: 0 at the lower bound, 1 at the upper one."""
        s = np.log(value) if self.log else np.asarray(value, dtype=np.float64)
        return (s - self.lo) / self.w

    def inverse(self, value: np.ndarray) -> np.ndarray:
        f = np.clip(self.fraction(value), 1e-9, 1 - 1e-9)  # exactly on a bound: just inside
        return self.w / 4 * np.log(f / (1 - f))

    def at_bound(self, value, tol: float = 1e-5) -> np.ndarray:
        """Where ``value`` sits on a bound (the sigmoid is saturated: no gradient moves it)."""
        f = self.fraction(value)
        return (f < tol) | (f > 1 - tol)


class _Fit:
    """One optimisation: the objective, its bookkeeping, and the verdict."""

    def __init__(self, trainer, problem):
        self.t, self.cfg, self.model = trainer, trainer.config, trainer.model
        self.problem = problem
        self.init = problem.init  # the initial states (the stability limit depends on them)
        self.signal = problem.signal  # mean square of the targets: misfits far below it are round-off
        self.notes: list[str] = []
        self.transforms = {p.name: self._transform(p) for p in trainer.learnables}
        self.error: BaseException | None = None
        self.evals, self.nonfinite, self.history = 0, 0, []
        self.best = (np.inf, None, np.nan, np.nan)  # objective, params, data loss, reg loss

    # -------------------------------------------------------------- pieces
    def _transform(self, p: LearnableParam) -> _BoundedTransform:
        lo, hi = p.bounds
        if self.cfg.clamp_to_stable and lo >= 0 and p.kind != "vector":  # larger = less stable
            hi = self._stable_upper(p, lo, hi)
        return _BoundedTransform(lo, hi, p.transform == "log")

    def _stable_upper(self, p: LearnableParam, lo: float, hi: float) -> float:
        """Largest value in ``[lo, hi]`` the explicit scheme is stable with (bisection, in log
        space for log parameters)."""
        others = self.t.param_tensors()

        def stable(v):
            params = {**others, p.name: p.tensor(self.model, np.full(p.value.shape, v))}
            return self.model.dt <= self.model.max_stable_dt(self.init, params)

        if stable(hi):
            return hi
        if not stable(lo):
            self.notes.append(f"{p.name!r} is unstable over its whole range {p.bounds} with "
                              f"dt={self.model.dt:g} (explicit limit); the fit will likely diverge.")
            return hi
        log = p.transform == "log"
        to, back = (np.log, np.exp) if log else (float, float)
        a, b = to(lo), to(hi)
        for _ in range(40):
            m = 0.5 * (a + b)
            a, b = (m, b) if stable(back(m)) else (a, m)
        limit = float(back(a))
        self.notes.append(f"upper bound of {p.name!r} lowered from {hi:.4g} to the stability limit {limit:.4g}")
        return limit

    def params_of(self, zs) -> dict:
        return {p.name: self.transforms[p.name].forward(z) for p, z in zip(self.t.learnables, zs)}

    def losses(self, params: dict):
        """(data loss, weighted regulariser) as phiml scalars."""
        return self.problem.losses(params)

    # -------------------------------------------------------------- run
    def run(self) -> FitResult:
        t0 = time.perf_counter()
        z0 = tuple(self._z(p, self.t._values[p.name]) for p in self.t.learnables)
        data0, reg0 = (_float(x) for x in self.losses(self.params_of(z0)))
        self.scale = data0 if np.isfinite(data0) and data0 > 0 else 1.0
        self.obj0 = (data0 + reg0) / self.scale
        start = self._public_params(z0)
        if not np.isfinite(self.obj0):
            self.notes.insert(0, "the loss at the initial guess is not finite: the model is unstable with "
                                 "these parameters / this dt (check dt, substeps and the bounds)")
            return self._result(start, data0, data0, reg0, 0, "diverged", "", t0)
        if reg0 == 0 and self._at_floor(data0):
            return self._result(start, data0, data0, reg0, 0, "converged",
                                "the initial guess fits the data to float precision", t0)
        self.best = (self.obj0, start, data0, reg0)
        info = self._minimize(z0)
        if isinstance(self.error, Exception):
            raise RuntimeError(f"The loss raised inside the optimiser: {self.error!r}") from self.error
        if self.error is not None:  # KeyboardInterrupt / SystemExit: as they were
            raise self.error
        status = self._verdict(info)
        if self.deferral.pending is not None:  # a signal whose handler did not raise ended the optimiser early
            self.notes.append(f"stopped early by signal {self.deferral.pending}")
            status = "not_converged" if status == "converged" else status
        obj, params, data, reg = self.best
        return self._result(params, data, data0, reg, int(info.iterations.numpy().max()), status, _msg(info), t0)

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
                params = self.params_of(zs)
                data, reg = self.losses(params)
                obj = (data + reg) / self.scale
                val = _float(obj)
        except BaseException as e:  # noqa: BLE001  (Ctrl-C too; re-raised after minimize returns)
            self.error = e
            return zero
        self.evals += 1
        self.history.append(val)
        if not np.isfinite(val):
            self.nonfinite += 1
        elif val < self.best[0]:
            self.best = (val, self._public_params(zs), _float(data), _float(reg))
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
            self.notes.append(f"the result is beyond the model's explicit stability limit at dt={self.model.dt:g}")
            return "diverged"
        if info.converged.all:
            if self.nonfinite and not improved:
                self.notes.append("the optimiser stopped at the initial guess after non-finite evaluations")
                return "not_converged"
            return "not_converged" if self._on_bounds(self.best[1]) else "converged"
        if last_bad:
            return "diverged"
        ran_out = int(info.iterations.numpy().max()) >= self.cfg.max_iterations
        if not ran_out and self._at_floor(self.best[2]) and not self._on_bounds(self.best[1]):
            self.notes.append("the line search stopped at float round-off of the misfit")
            return "converged"
        self._on_bounds(self.best[1])
        return "not_converged"

    def _at_floor(self, data_loss: float) -> bool:
        """Whether a misfit is float round-off: below ``(10 eps)^2`` times the targets' mean square."""
        eps = np.finfo(np.float64 if math.get_precision() == 64 else np.float32).eps
        return bool(data_loss <= (10 * eps) ** 2 * self.signal)

    def _stable(self, params: dict) -> bool:
        tensors = {p.name: p.tensor(self.model, params[p.name]) for p in self.t.learnables}
        return bool(self.model.dt <= self.model.max_stable_dt(self.init, tensors))

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

    def _bounds_of(self, p: LearnableParam) -> tuple[float, float]:
        t = self.transforms[p.name]
        lo, hi = (np.exp(t.lo), np.exp(t.lo + t.w)) if t.log else (t.lo, t.lo + t.w)
        return float(lo), float(hi)

    def _range(self, p: LearnableParam) -> str:
        lo, hi = self._bounds_of(p)
        return f"[{lo:.4g}, {hi:.4g}]"

    # -------------------------------------------------------------- helpers
    def _z(self, p: LearnableParam, value: np.ndarray) -> math.Tensor:
        z = self.transforms[p.name].inverse(value)
        return p.tensor(self.model, z)

    def _public_params(self, zs) -> dict:
        out = {}
        for p, z in zip(self.t.learnables, zs):
            v = self.transforms[p.name].forward(z)
            out[p.name] = _public(_numpy(v, p, self.model))
        return out

    def _result(self, params, data, data0, reg, iterations, status, msg, t0) -> FitResult:
        message = "; ".join([m for m in [msg] + self.notes if m])
        return FitResult(params=params, final_loss=float(data), initial_loss=float(data0), iterations=iterations,
                         evaluations=self.evals, status=status, message=message,
                         seconds=time.perf_counter() - t0, num_samples=self.problem.num_samples,
                         reg_loss=float(reg), nonfinite_evaluations=self.nonfinite, loss_history=list(self.history),
                         bounds={p.name: self._bounds_of(p) for p in self.t.learnables}, epoch=self.t.epoch + 1)


def run_fit(trainer, problem) -> FitResult:
    """Minimise ``problem.losses`` over ``trainer``'s learnables, starting from its current
    estimate; returns the :class:`FitResult` (the caller decides whether to adopt it).

    Args:
        trainer: a :class:`~hybridkit.training.FieldTrainer` (learnables, current values, model,
            config with ``method``, ``abs_tol``, ``max_iterations``, ``clamp_to_stable``).
        problem: ``losses(params) -> (data, reg)`` on phiml tensors, ``init`` (the initial
            states, for the stability limit), ``signal`` (mean square of the targets) and
            ``num_samples``.
    """
    return _Fit(trainer, problem).run()


def _float(x) -> float:
    if isinstance(x, math.Tensor):
        n = x.native()
        return float(n.detach().cpu()) if hasattr(n, "detach") else float(n)
    return float(x)


def _numpy(v: math.Tensor, p: LearnableParam, model: AbstractPDE) -> np.ndarray:
    if p.kind == "field":
        order = list(model.grid.axes)
    elif p.kind == "vector":
        order = ["vector"]
    else:
        order = []
    n = v.native(order)
    return np.asarray(n.detach().cpu().numpy() if hasattr(n, "detach") else n, dtype=np.float64)


def _public(v: np.ndarray):
    return float(v) if np.ndim(v) == 0 else np.array(v, dtype=np.float64)


def _msg(info) -> str:
    m = info.msg
    if isinstance(m, (list, tuple)):
        m = "; ".join(str(x) for x in m)
    return str(m)


def _failure_text(r: FitResult) -> str:
    return (f"Physical fit {r.status} after {r.iterations} iterations / {r.evaluations} evaluations "
            f"(loss {r.initial_loss:.3e} -> {r.final_loss:.3e}): {r.message}. The trainer keeps its "
            "previous parameters" + ("" if r.status == "diverged" else " unless on_failure='warn'") +
            ". Fix: check dt / bounds, raise max_iterations, or set on_failure='warn'.")
