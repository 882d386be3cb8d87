"""``PhysicalTrainer``: recover PDE coefficients by fitting rollouts to observed trajectories.

The fit is one problem over all samples: initial states are stacked along ``batch``, each is
rolled out ``num_predict_steps`` steps with the learnable coefficients, and the loss is the mean
squared misfit over the observed target points (one scalar, :class:`RolloutProblem`), minimised
by ``phi.math.minimize`` (:class:`FieldTrainer`).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
from phi.field import Field
from phiml import math
from phiml.math import batch

from .._config import ConfigError
from ..data import ObservationMask, check_data_matches, check_values_match
from ..physics import AbstractPDE
from ._configs import PhysicalConfig, trainer_config
from ._field import FieldTrainer
from ._fit import FitResult
from ._misfit import RolloutProblem

__all__ = ["PhysicalTrainer"]


class PhysicalTrainer(FieldTrainer):
    """Fit a physical model's learnable coefficients to observed trajectories.

    Example (the original design note's usage, with the real spelling of its pseudo-code
    parameter line)::

        model = Burgers(GridSpec((64,), (100.,)), viscosity=0.5)
        learnable_params = [learnable("viscosity", 0.01)]   # note: math.tensor(0.01, name="viscosity")
        trainer = PhysicalTrainer(config, model, learnable_params)
        run = trainer.train(data_source=dataset, num_epochs=1)   # HybridDataset(..., return_fields=True)
        run[-1].status, trainer.params["viscosity"]

    Args:
        config: a :class:`PhysicalConfig`, its keys as a dict, or an experiment config with a
            ``trainer_params`` section (keys of the synthetic trainer there are ignored).
        model: an :class:`~hybridkit.physics.AbstractPDE`.
        learnable_params: list of :func:`~hybridkit.physics.learnable`, a dict ``name -> initial
            value``, or a bare value when the model has one parameter.
        observation: an :class:`~hybridkit.data.ObservationMask` applied to every sample
            (a per-sample mask can come as the third element of a data item).

    Data items (``train``, ``_train_sample``): ``(initial_fields, target_fields[, mask])`` with
    ``initial_fields`` a dict ``name -> Field`` (no batch dims, or a ``batch`` dim) and
    ``target_fields`` a dict ``name -> Field`` with a batch dim ``time`` of ``num_predict_steps``.

    Attributes:
        history: one :class:`~hybridkit.training.FitResult` per fit.
    """

    def __init__(self, config: Mapping[str, Any] | PhysicalConfig | None, model: AbstractPDE, learnable_params, *,
                 observation: ObservationMask | None = None):
        super().__init__(trainer_config(PhysicalConfig, config), model, learnable_params)
        if observation is not None and not isinstance(observation, ObservationMask):
            raise TypeError(f"Expected an ObservationMask (or None) as observation, got {type(observation).__name__}.")
        self.observation = observation
        if self.config.regularizer and not any(p.kind == "field" for p in self.learnables):
            raise ConfigError(f"regularizer={self.config.regularizer!r} acts on field parameters, but "
                              f"{[p.name for p in self.learnables]} are not fields. Fix: set regularizer=None.")

    # ------------------------------------------------------------------ the original design's attributes
    @property
    def num_predict_steps(self) -> int:
        """Rollout steps per sample that the loss compares against targets."""
        return self.config.num_predict_steps

    @property
    def gt_fields(self) -> tuple[str, ...]:
        """The fields whose observed frames the fit matches (the model's fields)."""
        return tuple(self.model.field_names)

    # ------------------------------------------------------------------ training
    def train(self, data_source, num_epochs: int = 1, *, progress: bool = True, callbacks=()):
        """Fit ``num_epochs`` times on ``data_source``, each fit starting from the current estimate
        (see :meth:`AbstractTrainer.train`; a physical fit usually needs one epoch).

        Returns:
            The :class:`FitResult` of each fit of this call (a ``History``).

        Raises:
            FitError: a fit diverged or did not converge and ``on_failure="raise"``.
            DataMismatchError: the dataset's grid, dt, equation or fields differ from the model's.
        """
        self._progress = progress
        check_data_matches(data_source, self.model)
        return super().train(data_source, num_epochs, progress=progress, callbacks=callbacks)

    def _train_epoch_with_data(self, data_source) -> FitResult:
        """Gather the samples of ``data_source`` into one batch and fit once."""
        items = list(_take(data_source, self.config.max_samples))
        if not items:
            raise ValueError("Expected at least one (initial_fields, target_fields) sample, got none.")
        return self._fit(self._problem(*self._gather(items)))

    def _train_sample(self, initial_fields, target_fields):
        """Fit one sample (the original design's hook). Returns ``(params, final_loss)``."""
        result = self.fit_items([(initial_fields, target_fields)])
        return result.params, result.final_loss

    def fit_items(self, items: Iterable) -> FitResult:
        """Fit all ``(initial_fields, target_fields[, mask])`` items together as one problem."""
        items = list(items)
        if not items:
            raise ValueError("Expected at least one (initial_fields, target_fields) sample, got none.")
        return self.fit(*self._gather(items))

    def fit(self, initial: Mapping, targets: Mapping, weights: math.Tensor | ObservationMask | None = None,
            *, progress: bool | None = None) -> FitResult:
        """Fit the learnable parameters to a batch of trajectories; adopt the result if it is good.
        One fit is one epoch of this trainer.

        Args:
            initial: ``name -> Field / tensor`` ``(batch, *space[, vector])`` (all model fields).
            targets: ``name -> Field / tensor`` ``(batch, time, *space[, vector])``,
                ``time = num_predict_steps``.
            weights: an :class:`ObservationMask`, 0/1 weights broadcasting against the targets,
                or None (the trainer's ``observation``, else all observed).
            progress: show a progress bar over loss evaluations (default: as in ``train``).

        Returns:
            The :class:`FitResult` (also appended to :attr:`history`).

        Raises:
            FitError: per ``on_failure`` when the fit diverged, did not converge or is not identifiable.
            DataMismatchError: data on another grid than the model's.
        """
        if progress is not None:
            self._progress = bool(progress)
        result = self._fit(self._problem(initial, targets, weights))
        self._record(result)
        return result

    def data_loss(self, initial: Mapping, targets: Mapping, weights=None, params: Mapping | None = None) -> float:
        """The fit's data misfit (masked MSE over observed points) at ``params`` (default: the
        current estimate), without optimising; arguments as in :meth:`fit`."""
        problem = self._problem(initial, targets, weights)
        values = dict(self._values) if params is None else {k: np.asarray(v) for k, v in params.items()}
        tensors = {p.name: p.tensor(self.model, values[p.name]) for p in self.learnables}
        return problem.data_loss(tensors)

    # ------------------------------------------------------------------ data
    def _problem(self, initial: Mapping, targets: Mapping, weights) -> RolloutProblem:
        """The objective of a fit to these trajectories (checked, masks resolved)."""
        initial, targets = self._as_state(initial), self._as_state(targets)
        check_values_match(initial, self.model, "initial state")
        check_values_match(targets, self.model, "targets")
        init = {k: _values(v) for k, v in initial.items() if k in self.model.field_names}
        tgt = {k: _values(v) for k, v in targets.items()}
        self._check_batch(init, tgt)
        if weights is None and self.observation is not None:
            weights = self.observation
        if isinstance(weights, ObservationMask):
            weights = weights.weights(self.model.grid, self.config.num_predict_steps)
        return RolloutProblem(self.model, init, tgt, weights, self.learnables, regularizer=self.config.regularizer,
                              reg_weight=self.config.reg_weight, init_weights=_initial_weights(weights))

    def _gather(self, items):
        """Stack items along ``batch``: initial / target values and the observation weights."""
        inits, tgts, masks = [], [], []
        for item in items:
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise ValueError("Expected data items (initial_fields, target_fields[, mask]), got "
                                 f"{type(item).__name__}. Fix: use HybridDataset(..., return_fields=True).")
            init, tgt = self._as_state(item[0]), self._as_state(item[1])
            inits.append({k: _with_batch(_values(init[k])) for k in self.model.field_names})
            tgts.append({k: _with_batch(_values(v)) for k, v in tgt.items()})
            masks.append(item[2] if len(item) == 3 else self.observation)
        n = self.config.num_predict_steps
        init = {k: math.concat([i[k] for i in inits], "batch") for k in inits[0]}
        tgt = {k: math.concat([t[k] for t in tgts], "batch") for k in tgts[0]}
        if all(m is None for m in masks):
            return init, tgt, None
        if all(m is masks[0] for m in masks):
            return init, tgt, _weights(masks[0], self.model.grid, n)
        ws = []
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


def _take(source, n: int | None):
    """Up to ``n`` items of ``source``, evenly spaced when it is indexable (windows overlap)."""
    if hasattr(source, "__len__") and hasattr(source, "__getitem__"):
        for i in spread(len(source), n):
            yield source[i]
        return
    for i, item in enumerate(source):
        if n is not None and i >= n:
            return
        yield item


def spread(size: int, n: int | None) -> list[int]:
    """``n`` indices evenly spread over ``range(size)`` (all of them when ``n`` is None or larger)."""
    if n is None or n >= size:
        return list(range(size))
    return sorted(set(np.linspace(0, size - 1, n).round().astype(int).tolist()))


def _initial_weights(weights) -> math.Tensor | None:
    """Where the initial states count as observed: a cell observed at any target frame (the spatial
    part of the observation); None: everywhere."""
    if weights is None:
        return None
    w = math.max(weights, "time") if "time" in weights.shape else weights
    return None if (w == 1).all else w


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
