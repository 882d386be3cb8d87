"""How the optimiser sees the learnable numbers: bounded, well scaled, and started strictly inside.

Each number is optimised as ``z`` with ``value = T^-1(lo + w sigmoid(4 z / w))``, ``lo, lo + w``
its bounds after ``T`` (``log`` for positive ranges, else the identity), per number: a field
has one pair per cell (usually all equal), a parametric field one per component. Near the middle
of the range a unit step in ``z`` is a unit step in ``T(value)``; no step can leave the bounds.

The sigmoid saturates at its ends: a start on a bound has no gradient and would stall there.
:func:`start_inside` moves any start outside ``[lo + d w, lo + (1 - d) w]`` (``d`` =
:data:`INSIDE`) inside it, with an :class:`InitialGuessWarning` naming both values.

The upper bound of a non-negative coefficient is also limited by what the explicit scheme can
integrate (:func:`usable_upper`): with a user-set integer ``substeps`` the stability limit of
those substeps; with ``substeps="auto"`` what ``max_substeps`` substeps per frame can integrate.
"""
from __future__ import annotations

import warnings

import numpy as np
from phiml import math

from ..physics import AUTO, LearnableParam

__all__ = ["BoundedTransform", "InitialGuessWarning", "start_inside", "usable_upper", "INSIDE"]

#: starts are kept this fraction of the (transformed) range away from either bound
INSIDE = 0.01


class InitialGuessWarning(UserWarning):
    """A starting guess outside the range a fit can use was moved inside it."""


class BoundedTransform:
    """``value = T^-1(lo + w sigmoid(4 z / w))``, ``T = log`` or identity: bounded, slope 1 mid-range.

    Args:
        low, high: the bounds, floats or arrays of the numbers' shape (per number).
        log: optimise ``log value`` (positive bounds).
        as_tensor: turns an array of the numbers' shape into the phiml tensor ``z`` has
            (e.g. ``lambda a: p.numbers(model, a)``); None: scalar bounds.
    """

    def __init__(self, low, high, log: bool, as_tensor=None):
        self.log = log
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        self.lo = np.log(low) if log else low
        self.w = (np.log(high) if log else high) - self.lo
        if as_tensor is None:
            self._lo_t, self._w_t = float(self.lo), float(self.w)
        else:
            self._lo_t, self._w_t = as_tensor(self.lo), as_tensor(self.w)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` in the value's units."""
        hi = self.lo + self.w
        return (np.exp(self.lo), np.exp(hi)) if self.log else (self.lo, hi)

    def forward(self, z: math.Tensor) -> math.Tensor:
        s = self._lo_t + self._w_t * math.sigmoid(4 * z / self._w_t)
        return math.to_float(math.exp(s) if self.log else s)

    def fraction(self, value) -> np.ndarray:
        """Position of ``value`` in its range: 0 at the lower bound, 1 at the upper one."""
        s = np.log(np.maximum(value, 1e-300)) if self.log else np.asarray(value, dtype=np.float64)
        return (s - self.lo) / self.w

    def at_fraction(self, f) -> np.ndarray:
        """The value at fraction ``f`` of the range."""
        s = self.lo + self.w * np.asarray(f, dtype=np.float64)
        return np.exp(s) if self.log else s

    def inverse(self, value) -> np.ndarray:
        f = np.clip(self.fraction(value), 1e-9, 1 - 1e-9)  # exactly on a bound: just inside
        return self.w / 4 * np.log(f / (1 - f))

    def at_bound(self, value, tol: float = 1e-5) -> np.ndarray:
        """Where ``value`` sits on a bound (the sigmoid is saturated: no gradient moves it)."""
        f = self.fraction(value)
        return (f < tol) | (f > 1 - tol)

    def slope(self, value) -> np.ndarray:
        """``d value / d z`` at ``value``."""
        f = np.clip(self.fraction(value), 0.0, 1.0)
        ds = 4 * f * (1 - f)
        return ds * value if self.log else ds


def start_inside(p: LearnableParam, value: np.ndarray, transform: BoundedTransform, note) -> np.ndarray:
    """``value`` with every number outside ``[INSIDE, 1 - INSIDE]`` of its range moved there,
    warned about (:class:`InitialGuessWarning`) and noted (``note(text)``)."""
    f = transform.fraction(value)
    inside = np.clip(f, INSIDE, 1 - INSIDE)
    moved = ~np.isclose(f, inside, rtol=0, atol=1e-12)
    if not np.any(moved):
        return value
    new = np.where(moved, transform.at_fraction(inside), value)
    lo, hi = transform.bounds
    if np.ndim(value) == 0:
        text = (f"the starting guess {p.name}={float(value):.4g} is outside the range the fit can use "
                f"[{float(lo):.4g}, {float(hi):.4g}] (or on its edge, where the bounded transform has no "
                f"gradient); moved to {float(new):.4g}")
    else:
        i = int(np.flatnonzero(moved.reshape(-1))[0])
        text = (f"{int(moved.sum())} of {moved.size} starting numbers of {p.name!r} are outside the range the "
                f"fit can use or on its edge (e.g. number {i}: {np.ravel(value)[i]:.4g} not inside "
                f"[{np.ravel(np.broadcast_to(lo, np.shape(value)))[i]:.4g}, "
                f"{np.ravel(np.broadcast_to(hi, np.shape(value)))[i]:.4g}]); moved inside (e.g. to "
                f"{np.ravel(new)[i]:.4g})")
    warnings.warn(text + ". Fix: start inside the range, or widen the bounds / raise max_substeps.",
                  InitialGuessWarning, stacklevel=5)
    note(text)
    return new


def usable_upper(p: LearnableParam, lo: float, hi: float, needs, model, note) -> float:
    """The largest upper bound in ``[lo, hi]`` the explicit scheme can integrate for ``p`` (the
    other parameters at their current values), by bisection (in log space for log parameters).

    Args:
        needs: ``value -> number of substeps per frame`` (at all cells / components equal to it).
        note: ``note(text)`` collects what the fit says about it.
    """
    cap = model.max_substeps if model.substeps == AUTO else int(model.substeps)
    if needs(hi) <= cap:
        return hi
    what = (f"max_substeps={cap} substeps per frame" if model.substeps == AUTO
            else f"substeps={cap} (user-set: the stability limit)")
    if needs(lo) > cap:
        note(f"{p.name!r} needs more than {what} over its whole range {(lo, hi)} with dt={model.dt:g}; the fit "
             "will likely diverge. Fix: frames closer together, a coarser grid, or a larger max_substeps")
        return hi
    log = p.transform == "log"
    to, back = (np.log, np.exp) if log else (float, float)
    a, b = to(lo), to(hi)
    for _ in range(40):
        m = 0.5 * (a + b)
        a, b = (m, b) if needs(back(m)) <= cap else (a, m)
    limit = float(back(a))
    if model.substeps == AUTO:
        note(f"upper bound of {p.name!r} lowered from {hi:.4g} to {limit:.4g}: above it one frame needs more "
             f"than {what} (dt={model.dt:g}; raise max_substeps to search further)")
    else:
        note(f"upper bound of {p.name!r} lowered from {hi:.4g} to the stability limit {limit:.4g} of {what}")
    return limit
