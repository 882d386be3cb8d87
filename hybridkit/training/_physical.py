"""Physical training: recover PDE coefficients by fitting rollouts to observed trajectories.

The fit is one problem over all samples: initial states are stacked along ``batch``, each is
rolled out ``num_predict_steps`` steps with the learnable coefficients, and the loss is the mean
squared misfit over the observed target points (one scalar), minimised by ``phi.math.minimize``.

Parameters are optimised in a bounded, well-scaled form: ``value = exp(lo + w sigmoid(4 z / w))``
with ``lo, lo + w = log bounds`` (``transform="log"``; linear without the ``exp``). Near the
middle of the range a unit step in ``z`` is a unit step in ``log value``; no step can leave the
bounds, and the upper bound is lowered to the model's explicit stability limit when it is beyond.
The objective is normalised to 1 at the initial guess so that ``abs_tol`` is relative to the
starting misfit. Non-finite losses are counted; they never become the result.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
from phi.field import Field
from phiml import math
from phiml.math import batch
from tqdm.auto import tqdm

from .._config import ConfigError, from_dict
from ..data._observation import ObservationMask, masked_mse, observed_count
from ..physics._base import AbstractPDE
from ..physics._learnable import LearnableParam, as_learnables
from ..physics._stencils import laplace, neighbours
from ._base import AbstractTrainer

__all__ = ["PhysicalConfig", "FitResult", "FitError", "FitWarning", "PhysicalTrainer"]

STATUSES = ("converged", "not_converged", "diverged")
REGULARIZERS = ("gradient", "tv", "laplacian")
# Gradient-based methods phiml's minimize can run. Checked up front: an unknown scipy method
# raises inside phiml's worker thread, which then never releases the main thread.
METHODS = ("auto", "L-BFGS-B", "BFGS", "CG", "TNC", "GD")  # SLSQP breaks phiml's callback


@dataclass
class PhysicalConfig:
    """Settings of :class:`PhysicalTrainer` (the seed's ``config["trainer_params"]``)."""

    num_predict_steps: int = 10  # rollout steps per sample the loss compares against targets
    method: str = "L-BFGS-B"  # any scipy.optimize.minimize method with gradients, or "GD"
    abs_tol: float = 1e-8  # scipy `tol`; the objective is 1 at the initial guess, so it is relative
    max_iterations: int = 100  # optimiser iterations per fit
    suppress_convergence: bool = False  # True: a fit that ran out of iterations is accepted quietly
    regularizer: str | None = None  # on field parameters: "gradient" (H1), "tv" or "laplacian"
    reg_weight: float = 0.0  # weight of the regulariser, in units of the data loss
    on_failure: str = "raise"  # diverged / not converged: "raise" FitError or "warn" and go on
    max_samples: int | None = None  # data items per fit (evenly spaced if indexable); None: all
    clamp_to_stable: bool = True  # lower non-negative parameters' upper bound to the stability limit

    def __post_init__(self):
        if isinstance(self.num_predict_steps, bool) or int(self.num_predict_steps) != self.num_predict_steps \
                or int(self.num_predict_steps) < 1:
            raise ValueError(f"num_predict_steps must be an integer >= 1, got {self.num_predict_steps!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if int(self.max_iterations) < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")
        if not float(self.abs_tol) > 0:
            raise ValueError(f"abs_tol must be > 0, got {self.abs_tol}")
        if self.on_failure not in ("raise", "warn"):
            raise ValueError(f"on_failure must be 'raise' or 'warn', got {self.on_failure!r}")
        if self.regularizer is not None and self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS} or None, got {self.regularizer!r}")
        if float(self.reg_weight) < 0 or (self.regularizer is None and self.reg_weight):
            raise ValueError(f"reg_weight must be >= 0 and needs a regularizer, got reg_weight="
                             f"{self.reg_weight}, regularizer={self.regularizer!r}")
        if self.max_samples is not None and int(self.max_samples) < 1:
            raise ValueError(f"max_samples must be >= 1 or None, got {self.max_samples}")


@dataclass
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

    @property
    def converged(self) -> bool:
        """Whether the optimiser met its tolerance at a finite, in-bounds, stable point."""
        return self.status == "converged"


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


class PhysicalTrainer(AbstractTrainer):
    """Fit a physical model's learnable coefficients to observed trajectories.

    Example (the seed's usage, with the real spelling of its pseudo-code parameter line)::

        model = Burgers(GridSpec((64,), (100.,)), viscosity=0.5)
        learnable_params = [learnable("viscosity", 0.01)]   # seed: math.tensor(0.01, name="viscosity")
        trainer = PhysicalTrainer(config, model, learnable_params)
        run = trainer.train(data_source=dataset, num_epochs=1)   # HybridDataset(..., return_fields=True)
        run["results"][-1].status, trainer.params["viscosity"]

    Args:
        config: a :class:`PhysicalConfig`, the seed's full config dict (its ``"trainer_params"``
            section is used) or a dict of trainer params; unknown keys are errors.
        model: an :class:`~hybridkit.physics.AbstractPDE`.
        learnable_params: list of :func:`~hybridkit.physics.learnable`, a dict ``name -> initial
            value``, or a bare value when the model has one parameter.
        observation: an :class:`~hybridkit.data.ObservationMask` applied to every sample
            (a per-sample mask can come as the third element of a data item).

    Data items (``train``, ``_train_sample``): ``(initial_fields, target_fields[, mask])`` with
    ``initial_fields`` a dict ``name -> Field`` (no batch dims, or a ``batch`` dim) and
    ``target_fields`` a dict ``name -> Field`` with a batch dim ``time`` of ``num_predict_steps``.
    """

    def __init__(self, config, model: AbstractPDE, learnable_params, *, observation: ObservationMask | None = None):
        super().__init__()
        if not isinstance(model, AbstractPDE):
            raise TypeError(f"Expected a physical model (AbstractPDE), got {type(model).__name__}.")
        self.config = _physical_config(config)
        self.model = model
        self.learnables: list[LearnableParam] = as_learnables(learnable_params, model)
        self.observation = observation
        if self.config.regularizer and not any(p.kind == "field" for p in self.learnables):
            raise ConfigError(f"regularizer={self.config.regularizer!r} acts on field parameters, but "
                              f"{[p.name for p in self.learnables]} are not fields. Fix: set regularizer=None.")
        self._values = {p.name: p.value.copy() for p in self.learnables}  # current estimate
        self.history["results"] = []
        self._progress = True

    # ------------------------------------------------------------------ public state
    @property
    def params(self) -> dict:
        """Current estimate: ``name -> float`` (scalar) or numpy array (field / vector)."""
        return {k: _public(v) for k, v in self._values.items()}

    def param_tensors(self) -> dict:
        """Current estimate as the phiml tensors ``model.step`` / ``model.rollout`` take."""
        return {p.name: p.tensor(self.model, self._values[p.name]) for p in self.learnables}

    def set_params(self, values: Mapping) -> dict:
        """Make ``values`` (``name -> float / array``, e.g. an earlier :attr:`params`) the current
        estimate: the point the next fit starts from.

        Raises:
            ValueError: a missing name, a wrong shape or a value outside the parameter's bounds.
        """
        new = {}
        for p in self.learnables:
            if p.name not in values:
                raise ValueError(f"Expected a value for {p.name!r}, got names {sorted(values)}.")
            v = np.asarray(values[p.name], dtype=np.float64)
            if v.shape != p.value.shape or not np.all((v >= p.bounds[0]) & (v <= p.bounds[1])):
                raise ValueError(f"Expected {p.name!r} of shape {p.value.shape} within {p.bounds}, got "
                                 f"shape {v.shape}, range [{v.min():.4g}, {v.max():.4g}].")
            new[p.name] = v.copy()
        self._values = new
        return self.params

    def data_loss(self, initial: Mapping, targets: Mapping, weights=None, params: Mapping | None = None) -> float:
        """The fit's data misfit (masked MSE over observed points) at ``params`` (default: the
        current estimate), without optimising; arguments as in :meth:`fit`."""
        init = {k: _values(v) for k, v in initial.items() if k in self.model.field_names}
        tgt = {k: _values(v) for k, v in targets.items()}
        self._check_batch(init, tgt)
        if weights is None and self.observation is not None:
            weights = self.observation
        if isinstance(weights, ObservationMask):
            weights = weights.weights(self.model.grid, self.config.num_predict_steps)
        values = dict(self._values) if params is None else {k: np.asarray(v) for k, v in params.items()}
        tensors = {p.name: p.tensor(self.model, values[p.name]) for p in self.learnables}
        counts = None if weights is None else {k: observed_count(weights, v.shape) for k, v in tgt.items()}
        return _float(rollout_misfit(self.model, init, tgt, tensors, weights, counts))

    @property
    def last_result(self) -> FitResult | None:
        """The most recent :class:`FitResult` (None before the first fit)."""
        return self.history["results"][-1] if self.history["results"] else None

    # ------------------------------------------------------------------ seed API
    def train(self, data_source, num_epochs: int = 1, *, progress: bool = True) -> dict:
        """Fit ``num_epochs`` times on ``data_source``, each fit starting from the current estimate.

        Returns:
            ``{"loss": [final data loss per epoch], "results": [FitResult per epoch]}``.

        Raises:
            FitError: a fit diverged or did not converge and ``on_failure="raise"``.
        """
        self._progress = progress
        start = len(self.history["results"])
        run = super().train(data_source, num_epochs, progress=progress)
        run["results"] = self.history["results"][start:]
        return run

    def _train_epoch_with_data(self, data_source) -> float:
        """Gather the samples of ``data_source`` into one batch and fit once."""
        return self.fit_items(list(_take(data_source, self.config.max_samples))).final_loss

    def _train_sample(self, initial_fields, target_fields):
        """Fit one sample (the seed's hook). Returns ``(params, final_loss)``."""
        result = self.fit_items([(initial_fields, target_fields)])
        return result.params, result.final_loss

    # ------------------------------------------------------------------ fitting
    def fit_items(self, items) -> FitResult:
        """Fit all ``(initial_fields, target_fields[, mask])`` items together as one problem."""
        if not items:
            raise ValueError("Expected at least one (initial_fields, target_fields) sample, got none.")
        initial, targets, weights = self._gather(items)
        return self.fit(initial, targets, weights)

    def fit(self, initial: Mapping, targets: Mapping, weights: math.Tensor | ObservationMask | None = None,
            *, progress: bool | None = None) -> FitResult:
        """Fit the learnable parameters to a batch of trajectories; adopt the result if it is good.

        Args:
            initial: ``name -> Field / tensor`` ``(batch, *space[, vector])`` (all model fields).
            targets: ``name -> Field / tensor`` ``(batch, time, *space[, vector])``,
                ``time = num_predict_steps``.
            weights: an :class:`ObservationMask`, 0/1 weights broadcasting against the targets,
                or None (the trainer's ``observation``, else all observed).
            progress: show a progress bar over loss evaluations (default: as in ``train``).

        Returns:
            The :class:`FitResult` (also appended to ``history["results"]``).

        Raises:
            FitError: per ``on_failure`` when the fit diverged or did not converge.
        """
        init = {k: _values(v) for k, v in self._as_state(initial).items() if k in self.model.field_names}
        tgt = {k: _values(v) for k, v in self._as_state(targets).items()}
        self._check_batch(init, tgt)
        if weights is None and self.observation is not None:
            weights = self.observation
        if isinstance(weights, ObservationMask):
            weights = weights.weights(self.model.grid, self.config.num_predict_steps)
        if progress is not None:
            self._progress = bool(progress)
        result = _Fit(self, init, tgt, weights).run()
        return self._adopt(result)

    def _adopt(self, result: FitResult) -> FitResult:
        self.history["results"].append(result)
        ok = result.converged or (result.status == "not_converged" and self.config.suppress_convergence)
        if not ok and self.config.on_failure == "raise":
            raise FitError(result)
        if not ok:
            warnings.warn(_failure_text(result), FitWarning, stacklevel=3)
        if result.status != "diverged" and np.isfinite(result.final_loss):
            self._values = {k: np.array(v, dtype=np.float64) for k, v in result.params.items()}
        return result

    # ------------------------------------------------------------------ data
    def _gather(self, items):
        """Stack items along ``batch``: initial / target values and the observation weights."""
        inits, tgts, ws, masks = [], [], [], []
        for item in items:
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise ValueError("Expected data items (initial_fields, target_fields[, mask]), got "
                                 f"{type(item).__name__}. Fix: use HybridDataset(..., return_fields=True).")
            init, tgt = self._as_state(item[0]), self._as_state(item[1])
            mask = item[2] if len(item) == 3 else self.observation
            inits.append({k: _with_batch(_values(init[k])) for k in self.model.field_names})
            tgts.append({k: _with_batch(_values(v)) for k, v in tgt.items()})
            masks.append(mask)
        n = self.config.num_predict_steps
        init = {k: math.concat([i[k] for i in inits], "batch") for k in inits[0]}
        tgt = {k: math.concat([t[k] for t in tgts], "batch") for k in tgts[0]}
        if all(m is None for m in masks):
            return init, tgt, None
        if all(m is masks[0] for m in masks):
            return init, tgt, _weights(masks[0], self.model.grid, n)
        for i, m in zip(inits, masks):  # different masks per item: full (batch, time, *space) weights
            size = next(iter(i.values())).shape.get_size("batch")
            full = batch(batch=size) & batch(time=n) & self.model.grid.spatial_shape
            ws.append(math.expand(_weights(m, self.model.grid, n), full))
        return init, tgt, math.concat(ws, "batch")

    def _as_state(self, s) -> dict:
        if isinstance(s, (Field, math.Tensor)) and len(self.model.field_names) == 1:
            return {self.model.field_names[0]: s}
        if not isinstance(s, Mapping):
            raise TypeError(f"Expected a dict name -> Field, got {type(s).__name__}.")
        return s

    def _check_batch(self, init: dict, tgt: dict):
        missing = [k for k in self.model.field_names if k not in init]
        if missing:
            raise KeyError(f"Initial state lacks field(s) {missing}; {type(self.model).__name__} "
                           f"needs {list(self.model.field_names)}.")
        unknown = [k for k in tgt if k not in self.model.field_names]
        if unknown or not tgt:
            raise KeyError(f"Expected targets for some of {list(self.model.field_names)}, got {list(tgt)}.")
        n = self.config.num_predict_steps
        for label, values in (("initial state", init), ("targets", tgt)):
            bad = [k for k, v in values.items() if not math.is_finite(v).all]
            if bad:
                # a NaN here would look like an unstable model ("diverged") to the fit: say what it is
                raise ValueError(
                    f"Expected finite data, got NaN or inf in the {label} of {bad}. Fix: check the "
                    "dataset (np.isfinite) and leave the bad simulations out."
                )
        for k, v in tgt.items():
            size = v.shape.get_size("time") if "time" in v.shape else None
            if size != n:
                raise ValueError(
                    f"Expected target {k!r} with a batch dim 'time' of num_predict_steps={n} frames, "
                    f"got shape {v.shape}. Fix: HybridDataset(..., num_predict_steps={n}) or change "
                    "trainer_params['num_predict_steps']."
                )

    # ------------------------------------------------------------------ persistence
    def save_params(self, path) -> Path:
        """Write the current estimate to ``path`` (``.json`` or ``.npz``), atomically."""
        path = Path(path)
        payload = {p.name: self._values[p.name] for p in self.learnables}
        kinds = {p.name: p.kind for p in self.learnables}
        _atomic_write(path, lambda f: _dump(f, path.suffix, payload, kinds))
        return path

    def load_params(self, path) -> dict:
        """Read an estimate written by :meth:`save_params` and make it current.

        Files are read as data only (JSON, or ``np.load(allow_pickle=False)``): a crafted file
        cannot run code.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: a damaged or foreign file; names, shapes or values that do not fit this
                trainer's parameters.
        """
        path = Path(path)
        if path.suffix not in (".json", ".npz"):
            raise ValueError(f"Expected a .json or .npz file, got {path}.")
        try:
            if path.suffix == ".json":
                data = json.loads(path.read_text())
                if not isinstance(data, dict) or data.get("format") != "hybridkit.physical_params":
                    raise ValueError("no format tag 'hybridkit.physical_params'")
                loaded = {k: np.asarray(v["value"], dtype=np.float64) for k, v in data["params"].items()}
            else:
                with np.load(path, allow_pickle=False) as z:
                    loaded = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(
                f"Expected a parameter file written by PhysicalTrainer.save_params, but {path} cannot be "
                f"read as one ({type(e).__name__}: {str(e)[:200]}). Fix: use another file or refit."
            ) from None
        new = {}
        for p in self.learnables:
            if p.name not in loaded:
                raise ValueError(f"{path} lacks parameter {p.name!r}; it holds {sorted(loaded)}.")
            v = loaded[p.name]
            if v.shape != p.value.shape or not np.all((v >= p.bounds[0]) & (v <= p.bounds[1])):
                raise ValueError(f"{p.name!r} in {path}: expected shape {p.value.shape} within "
                                 f"{p.bounds}, got shape {v.shape}, range [{v.min():.4g}, {v.max():.4g}].")
            new[p.name] = v
        self._values = new
        return self.params


class _Fit:
    """One optimisation: the objective, its bookkeeping, and the verdict."""

    def __init__(self, trainer: PhysicalTrainer, init: dict, tgt: dict, weights):
        self.t, self.cfg, self.model = trainer, trainer.config, trainer.model
        self.init, self.tgt, self.weights = init, tgt, weights
        self.counts = None if weights is None else {k: observed_count(weights, v.shape) for k, v in tgt.items()}
        # mean square of the observed targets: misfits below FLOOR * signal are float round-off
        self.signal = _float(masked_mse(tgt, {k: v * 0 for k, v in tgt.items()}, weights, self.counts))
        # the counts as tensors: traced inputs of the compiled misfit, not constants baked into a trace
        self._counts_t = None if self.counts is None else {k: math.tensor(float(c)) for k, c in self.counts.items()}
        self._misfit = compiled_misfit(self.model)
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
        data = self._misfit(self.init, self.tgt, params, self.weights, self._counts_t)
        reg = 0.0
        if self.cfg.regularizer:
            for p in self.t.learnables:
                if p.kind == "field":
                    reg = reg + regularizer(params[p.name], self.cfg.regularizer, self.model)
            reg = self.cfg.reg_weight * reg
        return data, reg

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
        obj, params, data, reg = self.best
        return self._result(params, data, data0, reg, int(info.iterations.numpy().max()), status, _msg(info), t0)

    def _minimize(self, z0):
        bar = tqdm(desc="fit", unit="eval", disable=not self.t._progress, leave=False)
        self.bar = bar
        solve = math.Solve(self.cfg.method, 0, self.cfg.abs_tol, x0=z0, max_iterations=self.cfg.max_iterations,
                           suppress=(math.NotConverged, math.Diverged))
        try:
            with math.SolveTape(record_trajectories=False) as tape:
                math.minimize(self.objective, solve)
        finally:
            bar.close()
        return tape[0]

    def objective(self, *zs):
        """Normalised loss; never raises: an exception (or Ctrl-C) inside phiml's minimize would leave
        its worker thread waiting forever. The error is stored, every later call returns NaN at once so
        the optimiser gives up, and :meth:`run` re-raises it."""
        zero = sum(math.sum(z, z.shape) for z in zs) * 0  # keeps the output connected to the input
        if self.error is not None:
            return zero + np.nan
        try:
            params = self.params_of(zs)
            data, reg = self.losses(params)
            obj = (data + reg) / self.scale
            val = _float(obj)
        except BaseException as e:  # noqa: BLE001  (Ctrl-C too; re-raised after minimize returns)
            self.error = e
            return zero + np.nan
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
                         seconds=time.perf_counter() - t0, num_samples=_batch_size(self.init),
                         reg_loss=float(reg), nonfinite_evaluations=self.nonfinite, loss_history=list(self.history),
                         bounds={p.name: self._bounds_of(p) for p in self.t.learnables})


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
    (measured ~2x faster per evaluation of a 20-step fit on 64 cells; benchmarks/). Cached per
    model; a new batch size or rollout length retraces once (only the latest trace is kept).
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


# ---------------------------------------------------------------------- regularisers
def regularizer(p: math.Tensor, kind: str, model: AbstractPDE) -> math.Tensor:
    """Smoothness penalty of a coefficient field ``p`` (mean over cells, physical units).

    * ``"gradient"`` (H1): ``mean sum_a ((p[i+1] - p[i]) / dx_a)^2``
    * ``"tv"`` (total variation): ``mean sqrt(sum_a ((p[i+1] - p[i]) / dx_a)^2 + 1e-12)``
    * ``"laplacian"``: ``mean (laplace p)^2``
    """
    g, b = model.grid, model.coefficient_boundary
    if kind == "laplacian":
        lap = laplace(p, g.axes, g.dx, b)
        return math.mean(lap ** 2, lap.shape)
    grad2 = 0
    for axis, dx in zip(g.axes, g.dx):
        _, up = neighbours(p, axis, b)
        grad2 = grad2 + ((up - p) / dx) ** 2
    if kind == "gradient":
        return math.mean(grad2, grad2.shape)
    if kind == "tv":
        tv = math.sqrt(grad2 + 1e-12)  # smoothed so the gradient exists where p is flat
        return math.mean(tv, tv.shape)
    raise ValueError(f"Expected a regularizer in {REGULARIZERS}, got {kind!r}.")


# ---------------------------------------------------------------------- small helpers
def _physical_config(config) -> PhysicalConfig:
    if isinstance(config, PhysicalConfig):
        return config
    if isinstance(config, Mapping) and "trainer_params" in config:
        return from_dict(PhysicalConfig, config["trainer_params"], where='config["trainer_params"]')
    return from_dict(PhysicalConfig, config, where="PhysicalTrainer config")


def _take(source, n: int | None):
    """Up to ``n`` items of ``source``, evenly spaced when it is indexable (windows overlap)."""
    if hasattr(source, "__len__") and hasattr(source, "__getitem__"):
        size = len(source)
        idx = range(size) if n is None or n >= size else np.unique(np.linspace(0, size - 1, n).round().astype(int))
        for i in idx:
            yield source[int(i)]
        return
    for i, item in enumerate(source):
        if n is not None and i >= n:
            return
        yield item


def _values(v) -> math.Tensor:
    return v.values if isinstance(v, Field) else v


def _with_batch(v: math.Tensor) -> math.Tensor:
    return v if "batch" in v.shape else math.expand(v, batch(batch=1))


def _weights(mask, grid, n) -> math.Tensor | None:
    if mask is None:
        return math.tensor(1.0)
    if isinstance(mask, ObservationMask):
        return mask.weights(grid, n)
    if isinstance(mask, math.Tensor):
        return mask
    raise TypeError(f"Expected an ObservationMask (or None) as a sample's mask, got {type(mask).__name__}.")


def _batch_size(values: dict) -> int:
    v = next(iter(values.values()))
    return v.shape.get_size("batch") if "batch" in v.shape else 1


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


def _dump(f, suffix: str, payload: dict, kinds: dict):
    if suffix == ".json":
        doc = {"format": "hybridkit.physical_params", "version": 1,
               "params": {k: {"kind": kinds[k], "shape": list(np.shape(v)), "value": np.asarray(v).tolist()}
                          for k, v in payload.items()}}
        f.write(json.dumps(doc, indent=1).encode())
    elif suffix == ".npz":
        np.savez(f, **{k: np.asarray(v) for k, v in payload.items()})
    else:
        raise ValueError(f"Expected a .json or .npz path, got suffix {suffix!r}.")


def _atomic_write(path: Path, write):
    """Write to a temporary file next to ``path`` and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
