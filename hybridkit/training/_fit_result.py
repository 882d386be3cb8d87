"""What one physical fit did: :class:`FitResult`, and the error / warning of a fit that failed."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FitResult", "FitError", "FitWarning", "STATUSES"]

#: what a fit can end as
STATUSES = ("converged", "not_converged", "diverged", "not_identifiable")
_Z = {0.68: 0.994457883, 0.9: 1.644853627, 0.95: 1.959963985, 0.99: 2.575829304}


@dataclass(frozen=True)
class FitResult:
    """What one fit did.

    Attributes:
        params: ``name -> float`` (scalar) or ``numpy`` array (field ``resolution`` / vector
            ``(ndim,)`` / parametric ``theta``): the best finite point found (for ``"diverged"``: not
            adopted).
        final_loss, initial_loss: data misfit (masked MSE over observed target points) at the
            result and at the initial guess; ``reg_loss``: the weighted regulariser at the result.
        iterations, evaluations: optimiser iterations and loss evaluations (with gradient).
        status: ``"converged"``, ``"not_converged"``, ``"diverged"`` or ``"not_identifiable"`` (the
            optimiser stopped, but the data do not determine some number: see ``unidentified``).
        message: the optimiser's message plus what the trainer noticed.
        seconds: wall time of the fit; ``num_samples``: trajectories fitted together.
        bounds: ``name -> (low, high)`` the optimiser was confined to (the upper bound possibly
            lowered to what the explicit scheme can integrate); per-number bounds of a parametric
            field are its ``(low, high)`` arrays as lists.
        loss_history: the normalised objective at every evaluation (1 at the initial guess).
        epoch: the fit's number in its trainer's history.
        std: ``name -> float / array``: standard errors of the fitted numbers (Gauss-Newton /
            Laplace at the optimum, noise estimated from the residual); for a free field each
            cell's conditional standard deviation; empty when not computed.
        field_std: ``name -> array resolution``: per-cell standard deviation of a field coefficient
            (parametric: propagated from ``theta``'s covariance; free: as ``std``).
        covariance: covariance of the few-number parameters (scalars, vectors, parametric), in the
            order of the trainer's learnables, flattened; None when not computed.
        noise_std: the noise level estimated from the residual (RMS, corrected for the numbers fitted).
        residual_correlation: lag-1 autocorrelation of the residuals along the first axis (about 0 for
            noise; near 1 for model error or a local minimum, where ``std`` is too small: said in ``message``).
        unidentified: numbers the data do not constrain (standard deviation above a quarter of
            their range), e.g. ``("viscosity",)`` for a fit to constant states.
        unconstrained: ``name -> bool array``: cells of a free field the data do not constrain.
        substeps: RK3 substeps per frame the result was rolled out with.
        initial_state_loss: with fitted initial states, the mean squared change of their observed
            points (0 otherwise).
        initial_states: the fitted initial states ``name -> array (batch, *space[, vector])``, or
            None (not written by :meth:`to_dict`: they are as large as the data).
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
    std: dict = field(default_factory=dict, repr=False)
    field_std: dict = field(default_factory=dict, repr=False)
    covariance: np.ndarray | None = field(default=None, repr=False)
    noise_std: float = float("nan")
    residual_correlation: float = float("nan")
    unidentified: tuple = ()
    unconstrained: dict = field(default_factory=dict, repr=False)
    substeps: int = 1
    initial_state_loss: float = 0.0
    initial_states: dict | None = field(default=None, repr=False, compare=False)

    @property
    def converged(self) -> bool:
        """Whether the optimiser met its tolerance at a finite, in-bounds, stable, identified point."""
        return self.status == "converged"

    @property
    def loss(self) -> float:
        """The data misfit at the result (``final_loss``): the record's loss in a history."""
        return self.final_loss

    def interval(self, name: str, level: float = 0.95) -> tuple:
        """``(low, high)`` of the approximate ``level`` confidence interval of ``name``'s numbers:
        ``value -/+ z std`` (Laplace), clipped to the bounds.

        Raises:
            KeyError: no standard error for ``name`` (the fit did not compute one).
            ValueError: a level other than 0.68, 0.9, 0.95 or 0.99.
        """
        if name not in self.std:
            raise KeyError(f"No standard error of {name!r} in this FitResult (computed for {sorted(self.std)}). "
                           "Fix: fit with uncertainty=True.")
        if level not in _Z:
            raise ValueError(f"Expected level in {sorted(_Z)}, got {level!r}.")
        v, s = np.asarray(self.params[name], dtype=np.float64), np.asarray(self.std[name], dtype=np.float64)
        lo, hi = v - _Z[level] * s, v + _Z[level] * s
        if name in self.bounds:
            b_lo, b_hi = (np.asarray(b, dtype=np.float64) for b in self.bounds[name])
            lo, hi = np.maximum(lo, b_lo), np.minimum(hi, b_hi)
        return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)

    def to_dict(self) -> dict:
        """Plain data (arrays as nested lists) for JSON and checkpoints (``initial_states`` left out)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "initial_states"}
        d["params"] = _plain_dict(self.params)
        d["bounds"] = {k: [_plain(b) for b in v] for k, v in self.bounds.items()}
        d["loss_history"] = list(self.loss_history)
        for key in ("std", "field_std", "unconstrained"):
            d[key] = _plain_dict(d[key])
        d["covariance"] = None if self.covariance is None else np.asarray(self.covariance).tolist()
        d["unidentified"] = list(self.unidentified)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FitResult":
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        d["params"] = _array_dict(d["params"])
        d["bounds"] = {k: tuple(float(b) if np.ndim(b) == 0 else np.asarray(b, dtype=np.float64) for b in v)
                       for k, v in d.get("bounds", {}).items()}
        d["loss_history"] = list(d.get("loss_history", []))
        for key in ("std", "field_std"):
            d[key] = _array_dict(d.get(key, {}))
        d["unconstrained"] = {k: np.asarray(v, dtype=bool) for k, v in d.get("unconstrained", {}).items()}
        if d.get("covariance") is not None:
            d["covariance"] = np.asarray(d["covariance"], dtype=np.float64)
        d["unidentified"] = tuple(d.get("unidentified", ()))
        return cls(**d)


class FitError(RuntimeError):
    """A fit diverged, did not converge or is not identifiable (``on_failure="raise"``); ``.result`` says how."""

    def __init__(self, result: FitResult):
        super().__init__(failure_text(result))
        self.result = result


class FitWarning(UserWarning):
    """A fit diverged, did not converge or is not identifiable (``on_failure="warn"``)."""


def failure_text(r: FitResult) -> str:
    """What went wrong in ``r``, with the fix."""
    fix = ("Fix: observe states that vary (the coefficient acts on gradients), more of the domain, or fit "
           "fewer numbers." if r.status == "not_identifiable"
           else "Fix: check dt / bounds, raise max_iterations, or set on_failure='warn'.")
    return (f"Physical fit {r.status} after {r.iterations} iterations / {r.evaluations} evaluations "
            f"(loss {r.initial_loss:.3e} -> {r.final_loss:.3e}): {r.message}. The trainer keeps its "
            "previous parameters" + ("" if r.status == "diverged" else " unless on_failure='warn'") + f". {fix}")


def public(v: np.ndarray):
    """A float for a 0-d value, else a float64 array."""
    return float(v) if np.ndim(v) == 0 else np.array(v, dtype=np.float64)


def _plain(v):
    return float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()


def _plain_dict(d: dict) -> dict:
    return {k: _plain(v) for k, v in d.items()}


def _array_dict(d: dict) -> dict:
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64)) for k, v in d.items()}
