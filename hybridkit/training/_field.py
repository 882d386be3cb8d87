"""``FieldTrainer``: learnable coefficients of a PhiFlow model, fitted with ``phi.math.minimize``."""
from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from .._config import to_dict
from .._io import atomic_write
from ..physics import AbstractPDE, LearnableParam, as_learnables
from ._base import AbstractTrainer
from ._checkpoint import CheckpointError, require
from ._configs import FieldConfig
from ._fit import FitError, FitResult, FitWarning, _failure_text, _public, run_fit

__all__ = ["FieldTrainer"]

_PARAMS_FORMAT = "hybridkit.physical_params"


class FieldTrainer(AbstractTrainer):
    """The PhiFlow half of the trainer hierarchy: a physical model's learnable coefficients.

    Holds the current estimate of each :func:`~hybridkit.physics.learnable` (scalar, field or
    vector), runs one ``phi.math.minimize`` per fit over them (bounded, well scaled: see
    :mod:`hybridkit.training._fit`), adopts a good result, and keeps one
    :class:`~hybridkit.training.FitResult` per fit in :attr:`history` (a fit is an epoch).
    Subclasses say what is minimised (e.g. the misfit of rollouts to data).

    Args:
        config: a :class:`~hybridkit.training.FieldConfig` (or a subclass).
        model: an :class:`~hybridkit.physics.AbstractPDE`.
        learnable_params: list of :func:`~hybridkit.physics.learnable`, a dict ``name -> initial
            value``, or a bare value when the model has one parameter.
    """

    record_type = FitResult

    def __init__(self, config: FieldConfig, model: AbstractPDE, learnable_params):
        super().__init__()
        if not isinstance(model, AbstractPDE):
            raise TypeError(f"Expected a physical model (AbstractPDE), got {type(model).__name__}.")
        self.config = config
        self.model = model
        self.learnables: list[LearnableParam] = as_learnables(learnable_params, model)
        self._values = {p.name: p.value.copy() for p in self.learnables}  # current estimate
        self._progress = True

    # ------------------------------------------------------------------ the original design's attributes
    @property
    def method(self) -> str:
        """The optimiser ``phi.math.minimize`` runs."""
        return self.config.method

    @property
    def abs_tol(self) -> float:
        """The optimiser's tolerance on the normalised objective."""
        return self.config.abs_tol

    @property
    def max_iterations(self) -> int:
        """Optimiser iterations per fit."""
        return self.config.max_iterations

    @property
    def suppress_convergence(self) -> bool:
        """Whether a fit that ran out of iterations is accepted quietly."""
        return self.config.suppress_convergence

    # ------------------------------------------------------------------ the estimate
    @property
    def params(self) -> dict:
        """Current estimate: ``name -> float`` (scalar) or numpy array (field / vector)."""
        return {k: _public(v) for k, v in self._values.items()}

    @property
    def coefficients(self) -> dict:
        """Current estimate as the model's coefficients: ``name -> float / array``; for a parametric
        learnable the field its numbers make (what ``model.rollout(state, n, params)`` takes)."""
        return {p.name: _public(p.parametrization.evaluate_numpy(self._values[p.name], self.model.grid))
                if p.kind == "parametric" else _public(self._values[p.name]) for p in self.learnables}

    def param_tensors(self) -> dict:
        """Current estimate as the phiml tensors ``model.step`` / ``model.rollout`` take."""
        return {p.name: p.tensor(self.model, self._values[p.name]) for p in self.learnables}

    def set_params(self, values: Mapping) -> dict:
        """Make ``values`` (``name -> float / array``, e.g. an earlier :attr:`params`) the current
        estimate: the point the next fit starts from.

        Raises:
            ValueError: a missing name, a wrong shape, a non-finite value or one outside the
                parameter's bounds.
        """
        self._values = self._checked(values, "")
        return self.params

    def _checked(self, values: Mapping, where: str) -> dict:
        new = {}
        for p in self.learnables:
            if p.name not in values:
                raise ValueError(f"Expected a value for {p.name!r}{where}, got names {sorted(values)}.")
            v = np.array(values[p.name], dtype=np.float64)
            lo, hi = p.lower_upper()
            if v.shape != p.value.shape or not np.all((v >= lo) & (v <= hi)):
                raise ValueError(f"Expected {p.name!r}{where} of shape {p.value.shape} within {p.bounds}, got "
                                 f"shape {v.shape}, range [{np.min(v):.4g}, {np.max(v):.4g}].")
            new[p.name] = v
        return new

    @property
    def last_result(self) -> FitResult | None:
        """The most recent :class:`FitResult` (None before the first fit)."""
        return self.history[-1] if self.history else None

    # ------------------------------------------------------------------ one fit
    def _fit(self, problem) -> FitResult:
        """Minimise ``problem`` from the current estimate (adopted when the fit is booked)."""
        return run_fit(self, problem)

    def _record(self, record: FitResult) -> None:
        """Book the fit, apply ``on_failure`` to one that diverged or did not converge (``"raise"``:
        FitError, nothing adopted), then adopt its result unless it diverged."""
        super()._record(record)
        ok = record.converged or (record.status == "not_converged" and self.config.suppress_convergence)
        if not ok and self.config.on_failure == "raise":
            raise FitError(record)
        if not ok:
            warnings.warn(_failure_text(record), FitWarning, stacklevel=4)
        if record.status != "diverged" and np.isfinite(record.final_loss):
            self._values = {k: np.array(v, dtype=np.float64) for k, v in record.params.items()}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Epoch, fit history, the current estimate (float64 tensors) and the trainer config."""
        return {**super().state_dict(), "params": {k: torch.from_numpy(np.array(v)) for k, v in self._values.items()},
                "config": to_dict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        require(state, ("epoch", "history", "params"), "the state", type(self).__name__)
        if not isinstance(state["params"], dict):
            raise CheckpointError("Its parameters are malformed (expected a dict name -> tensor).")
        values = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else v) for k, v in state["params"].items()}
        try:
            values = self._checked(values, " in the state")
        except ValueError as e:
            raise CheckpointError(f"{e} Fix: load a state of a trainer with the same learnable parameters.") from None
        super().load_state_dict(state)
        self._values = values

    # ------------------------------------------------------------------ parameter files
    def save_params(self, path) -> Path:
        """Write the current estimate to ``path`` (``.json`` or ``.npz``), atomically."""
        path = Path(path)
        if path.suffix == ".json":
            doc = {"format": _PARAMS_FORMAT, "version": 1,
                   "params": {p.name: {"kind": p.kind, "shape": list(np.shape(self._values[p.name])),
                                       "value": np.asarray(self._values[p.name]).tolist()} for p in self.learnables}}
            return atomic_write(path, json.dumps(doc, indent=1))
        if path.suffix == ".npz":
            buffer = io.BytesIO()
            np.savez(buffer, **{p.name: np.asarray(self._values[p.name]) for p in self.learnables})
            return atomic_write(path, buffer.getvalue())
        raise ValueError(f"Expected a .json or .npz path, got suffix {path.suffix!r}.")

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
        writer = f"{type(self).__name__}.save_params"
        try:
            if path.suffix == ".json":
                data = json.loads(path.read_text())
                if not isinstance(data, dict) or data.get("format") != _PARAMS_FORMAT:
                    raise ValueError(f"no format tag {_PARAMS_FORMAT!r}")
                loaded = {k: np.asarray(v["value"], dtype=np.float64) for k, v in data["params"].items()}
            else:
                with np.load(path, allow_pickle=False) as z:
                    loaded = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(
                f"Expected a parameter file written by {writer}, but {path} cannot be "
                f"read as one ({type(e).__name__}: {str(e)[:200]}). Fix: use another file or refit."
            ) from None
        self._values = self._checked(loaded, f" in {path}")
        return self.params
