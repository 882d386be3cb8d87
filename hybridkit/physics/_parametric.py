"""Coefficient fields given by a few numbers: Gaussian bumps, Fourier modes, piecewise-linear knots.

A free field has one unknown per cell; the HYCO authors' experiments describe a coefficient by a
handful of numbers instead (two Gaussian bumps: 8 numbers for heat), which is what makes a partly
observed domain a well-posed question. A parametrisation maps its numbers ``theta`` (a phiml
tensor with one channel dim of ``num_params(grid)`` items) to the field's values on a grid,
differentiably; it knows its components' names and bounds and has a plain numpy evaluation for
true coefficients::

    bumps = GaussianBumps(2)                           # base + 2 x (amplitude, centre_x, width)
    theta = [0.2, 1.0, 30.0, 8.0, 0.5, 70.0, 12.0]
    model = Diffusion(grid, diffusivity=bumps.evaluate_numpy(theta, grid))   # a true coefficient
    guess = learnable("diffusivity", theta0, parametrization=bumps)          # a learnable one

``to_dict()`` / :func:`parametrization_from_dict` give plain data for configs and checkpoints.
"""
from __future__ import annotations

import abc
import itertools
from typing import ClassVar, Mapping, Sequence

import numpy as np
from phiml import math

from .._checks import check_count
from .._grid import GridSpec

__all__ = ["AbstractParametricField", "GaussianBumps", "FourierModes", "PiecewiseLinear",
           "parametrization_from_dict"]


class AbstractParametricField(abc.ABC):
    """A field on a grid given by ``num_params(grid)`` numbers ``theta``.

    Subclasses implement ``component_names``, ``bounds``, ``_evaluate`` (phiml, differentiable),
    ``_evaluate_numpy`` and ``to_dict``; the checks of ``theta`` live here.
    """

    #: the ``"type"`` in :meth:`to_dict`
    type_name: ClassVar[str] = ""

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def component_names(self, grid: GridSpec) -> tuple[str, ...]:
        """Names of the numbers in ``theta``, in order (e.g. ``("base", "amplitude_0", ...)``)."""

    @abc.abstractmethod
    def bounds(self, grid: GridSpec, value_range: tuple[float, float]) -> np.ndarray:
        """Per-component bounds ``(num_params, 2)`` for a coefficient whose values lie in ``value_range``."""

    @abc.abstractmethod
    def _evaluate(self, theta: math.Tensor, dim: str, grid: GridSpec) -> math.Tensor:
        """The field from ``theta`` (components along channel dim ``dim``)."""

    @abc.abstractmethod
    def _evaluate_numpy(self, theta: np.ndarray, grid: GridSpec) -> np.ndarray:
        """The field ``resolution`` from a checked ``(num_params,)`` array."""

    @abc.abstractmethod
    def to_dict(self) -> dict:
        """Plain data: ``{"type": ..., <constructor arguments>}`` (see :func:`parametrization_from_dict`)."""

    # ------------------------------------------------------------------ public
    def num_params(self, grid: GridSpec) -> int:
        """Length of ``theta`` on ``grid``."""
        return len(self.component_names(grid))

    def evaluate(self, theta: math.Tensor, grid: GridSpec) -> math.Tensor:
        """The field's values on ``grid`` from ``theta``; differentiable w.r.t. ``theta``.

        Args:
            theta: phiml tensor with exactly one channel dim of ``num_params(grid)`` items (any
                name); other dims (e.g. ``batch``) give one field per entry. A numpy array /
                list ``(num_params,)`` is accepted too.

        Returns:
            phiml tensor with ``grid.spatial_shape`` (and the other dims of ``theta``).

        Raises:
            ValueError: ``theta`` without one channel dim of the right size.
        """
        if not isinstance(theta, math.Tensor):
            theta = self.theta_tensor(theta, grid)
        channels = theta.shape.channel
        p = self.num_params(grid)
        if channels.rank != 1 or channels.size != p:
            raise ValueError(
                f"Expected theta of {type(self).__name__} with one channel dim of {p} items "
                f"{list(self.component_names(grid))}, got shape {theta.shape}. Fix: "
                f"{type(self).__name__}(...).theta_tensor(values, grid) builds it from numbers.")
        return self._evaluate(theta, channels.name, grid)

    def evaluate_numpy(self, theta, grid: GridSpec) -> np.ndarray:
        """The field ``resolution`` (float64) from numbers ``theta`` ``(num_params,)``: for true
        coefficients, e.g. ``Diffusion(grid, diffusivity=bumps.evaluate_numpy(theta, grid))``.

        Raises:
            ValueError: wrong length, non-finite values, or values no field can be made of
                (e.g. a width <= 0).
        """
        return self._evaluate_numpy(self.check_theta(theta, grid), grid)

    def check_theta(self, theta, grid: GridSpec) -> np.ndarray:
        """``theta`` as a float64 array ``(num_params,)`` after checking its length and values.

        Raises:
            ValueError: with the expected names and what was given.
        """
        names = self.component_names(grid)
        t = np.asarray(theta, dtype=np.float64).reshape(-1) if np.ndim(theta) else np.asarray([theta], float)
        if t.shape != (len(names),):
            raise ValueError(
                f"Expected {len(names)} numbers for {self!r} on a {grid.ndim}D grid, in the order "
                f"{list(names)}, got {np.shape(theta)}.")
        if not np.all(np.isfinite(t)):
            bad = [n for n, v in zip(names, t) if not np.isfinite(v)]
            raise ValueError(f"Expected finite numbers for {self!r}, got NaN/inf in {bad}.")
        self._check_values(t, names)
        return t

    def _check_values(self, theta: np.ndarray, names: Sequence[str]) -> None:
        """Refuse numbers no field can be made of (default: none)."""

    def theta_tensor(self, values, grid: GridSpec, dim: str = "param") -> math.Tensor:
        """Numbers ``(num_params,)`` (or ``(n, num_params)``, one row per simulation along ``batch``)
        as the phiml tensor :meth:`evaluate` takes, with channel dim ``dim`` named per component."""
        v = np.asarray(values, dtype=np.float64)
        names = ",".join(self.component_names(grid))
        if v.ndim == 2:
            return math.tensor(v, math.batch("batch") & math.channel(**{dim: names}))
        return math.tensor(self.check_theta(v, grid), math.channel(**{dim: names}))

    def named(self, theta, grid: GridSpec) -> dict[str, float]:
        """``{component name: value}`` of numbers ``theta`` (for reports and configs)."""
        return dict(zip(self.component_names(grid), (float(x) for x in self.check_theta(theta, grid))))

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.to_dict().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------------- Gaussian bumps
class GaussianBumps(AbstractParametricField):
    r"""``f(x) = b + sum_k a_k exp(-|x - c_k|^2 / (2 w_k^2))``: ``K`` isotropic Gaussian bumps on a base.

    Components, in order: ``base`` (if ``base``), then per bump ``amplitude_k``, ``centre_<axis>_k``
    per axis, ``width_k``: ``1 + K (ndim + 2)`` numbers (7 for two bumps in 1D, 9 in 2D; without a
    base ``K (ndim + 2)``: 8 for two bumps in 2D, the HYCO heat setting). On a periodic grid the
    distance is the chord of the period, ``|x - c|_a^2 = (L_a / pi)^2 sin^2(pi (x_a - c_a) / L_a)``
    (= ``(x_a - c_a)^2 (1 + O(d^2/L^2))``), smooth and periodic; on other grids the plain distance.

    Bounds for a coefficient in ``(lo, hi)``: base in ``[lo, hi]``, amplitudes in ``[0, hi - lo]``
    (so a positive coefficient stays ``>= lo``), centres in ``[0, L_a]``, widths in
    ``[max dx, max L]`` (resolved by the grid, at most the domain).

    Args:
        num_bumps: ``K >= 1``.
        base: whether a constant base ``b`` is a component (else ``b = 0``: the field is ``>= 0``
            but may approach 0 away from the bumps).
    """

    type_name = "GaussianBumps"

    def __init__(self, num_bumps: int, *, base: bool = True):
        self.num_bumps = check_count(num_bumps, "num_bumps", minimum=1, fix="e.g. GaussianBumps(2).")
        if not isinstance(base, bool):
            raise ValueError(f"Expected base as True or False, got {base!r}.")
        self.base = base

    def component_names(self, grid):
        names = ["base"] if self.base else []
        for k in range(self.num_bumps):
            names += [f"amplitude_{k}"] + [f"centre_{a}_{k}" for a in grid.axes] + [f"width_{k}"]
        return tuple(names)

    def bounds(self, grid, value_range):
        lo, hi = _value_range(value_range)
        rows = [(lo, hi)] if self.base else []
        for _ in range(self.num_bumps):
            rows += [(0.0, hi - lo)] + [(0.0, size) for size in grid.domain_size]
            rows += [(max(grid.dx), max(grid.domain_size))]
        return np.asarray(rows, dtype=np.float64)

    def _check_values(self, theta, names):
        bad = [n for n, v in zip(names, theta) if n.startswith("width_") and not v > 0]
        if bad:
            raise ValueError(f"Expected widths > 0 for {self!r}, got {bad} <= 0. Fix: pass positive widths.")

    def _offset(self, grid) -> int:
        return 1 if self.base else 0

    def _evaluate(self, theta, dim, grid):
        comp = lambda i: theta[{dim: i}]  # noqa: E731
        coords = [math.tensor(c, grid.spatial_shape) for c in grid.coordinates()]
        field = comp(0) if self.base else 0
        per = grid.ndim + 2
        for k in range(self.num_bumps):
            i = self._offset(grid) + k * per
            d2 = sum(_squared_distance(x - comp(i + 1 + a), size, grid.boundary == "periodic")
                     for a, (x, size) in enumerate(zip(coords, grid.domain_size)))
            field = field + comp(i) * math.exp(-d2 / (2 * comp(i + per - 1) ** 2))
        return field

    def _evaluate_numpy(self, theta, grid):
        coords = grid.coordinates()
        field = np.full(tuple(grid.resolution), theta[0] if self.base else 0.0)
        per = grid.ndim + 2
        for k in range(self.num_bumps):
            i = self._offset(grid) + k * per
            amp, centre, width = theta[i], theta[i + 1: i + 1 + grid.ndim], theta[i + per - 1]
            d2 = np.zeros_like(field)
            for x, c, size in zip(coords, centre, grid.domain_size):
                if grid.boundary == "periodic":
                    d2 += (size / np.pi * np.sin(np.pi * (x - c) / size)) ** 2
                else:
                    d2 += (x - c) ** 2
            field += amp * np.exp(-d2 / (2 * width**2))
        return field

    def to_dict(self):
        return {"type": self.type_name, "num_bumps": self.num_bumps, "base": self.base}


def _squared_distance(diff: math.Tensor, size: float, periodic: bool) -> math.Tensor:
    if periodic:
        return (size / np.pi * math.sin(np.pi * diff / size)) ** 2
    return diff**2


# ---------------------------------------------------------------------------- Fourier modes
class FourierModes(AbstractParametricField):
    r"""A truncated Fourier series, of ``log f`` by default (``f = exp(s)``, positive by construction).

    ``s(x) = m + sum_k [a_k cos(2 pi k . x / L) + b_k sin(2 pi k . x / L)]`` over the integer
    wavevectors with ``max_a |k_a| <= K`` in one half-space (first non-zero component positive):
    ``K`` of them in 1D, ``2K (K + 1)`` in 2D. Components: ``mean``, then ``cos_<k>``, ``sin_<k>``
    per wavevector (``<k>`` like ``1`` or ``1_-2``): ``1 + 2K`` numbers in 1D.

    Bounds for a coefficient in ``(lo, hi)``: with ``log``: mean in ``[log lo, log hi]``,
    coefficients in ``+-(log hi - log lo) / 2`` (needs ``lo > 0``); without: mean in ``[lo, hi]``,
    coefficients in ``+-(hi - lo) / 2`` (the field may then leave ``[lo, hi]``, and go negative).

    Args:
        num_modes: ``K >= 1``, the largest wavenumber per axis.
        log: series of ``log f`` (True) or of ``f`` itself.
    """

    type_name = "FourierModes"

    def __init__(self, num_modes: int, *, log: bool = True):
        self.num_modes = check_count(num_modes, "num_modes", minimum=1, fix="e.g. FourierModes(3).")
        if not isinstance(log, bool):
            raise ValueError(f"Expected log as True or False, got {log!r}.")
        self.log = log

    def wavevectors(self, grid: GridSpec) -> list[tuple[int, ...]]:
        """The integer wavevectors, in component order."""
        rng = range(-self.num_modes, self.num_modes + 1)
        out = []
        for k in itertools.product(rng, repeat=grid.ndim):
            first = next((c for c in k if c != 0), 0)
            if first > 0:
                out.append(k)
        return out

    def component_names(self, grid):
        names = ["mean"]
        for k in self.wavevectors(grid):
            tag = "_".join(str(c) for c in k)
            names += [f"cos_{tag}", f"sin_{tag}"]
        return tuple(names)

    def bounds(self, grid, value_range):
        lo, hi = _value_range(value_range)
        if self.log:
            if not lo > 0:
                raise ValueError(
                    f"FourierModes(log=True) needs a positive lower bound of the coefficient, got "
                    f"{(lo, hi)}. Fix: positive bounds, or FourierModes(..., log=False).")
            mean, half = (np.log(lo), np.log(hi)), (np.log(hi) - np.log(lo)) / 2
        else:
            mean, half = (lo, hi), (hi - lo) / 2
        rows = [mean] + [(-half, half)] * (2 * len(self.wavevectors(grid)))
        return np.asarray(rows, dtype=np.float64)

    def _phases(self, grid):
        coords = grid.coordinates()
        return [sum(2 * np.pi * c * x / size for c, x, size in zip(k, coords, grid.domain_size))
                for k in self.wavevectors(grid)]

    def _evaluate(self, theta, dim, grid):
        s = theta[{dim: 0}]
        for j, phase in enumerate(self._phases(grid)):
            ph = math.tensor(phase, grid.spatial_shape)
            s = s + theta[{dim: 1 + 2 * j}] * math.cos(ph) + theta[{dim: 2 + 2 * j}] * math.sin(ph)
        return math.exp(s) if self.log else s

    def _evaluate_numpy(self, theta, grid):
        s = np.full(tuple(grid.resolution), theta[0])
        for j, phase in enumerate(self._phases(grid)):
            s = s + theta[1 + 2 * j] * np.cos(phase) + theta[2 + 2 * j] * np.sin(phase)
        return np.exp(s) if self.log else s

    def to_dict(self):
        return {"type": self.type_name, "num_modes": self.num_modes, "log": self.log}


# ---------------------------------------------------------------------------- piecewise linear
class PiecewiseLinear(AbstractParametricField):
    r"""Values at ``M`` equally spaced knots per axis, linearly (in 2D/3D multi-linearly) interpolated.

    Periodic grids: knots at ``x_j = j L / M`` (``j < M``), the last segment wrapping to the first.
    Other grids: knots at ``x_j = j L / (M - 1)``, the first at ``0``, the last at ``L``. Components
    ``knot_<j>`` (``knot_<i>_<j>`` in 2D), ``prod(M)`` numbers, each in the coefficient's
    ``[lo, hi]``: the interpolated field stays inside (a convex combination).

    Args:
        num_knots: ``M >= 2`` per axis, or one count per axis.
    """

    type_name = "PiecewiseLinear"

    def __init__(self, num_knots: int | Sequence[int]):
        counts = tuple(num_knots) if isinstance(num_knots, (list, tuple)) else (num_knots,)
        if not counts:
            raise ValueError("Expected num_knots as an integer >= 2 (or one per axis), got ().")
        self.num_knots = tuple(check_count(m, "num_knots", minimum=2, fix="e.g. PiecewiseLinear(8).")
                               for m in counts)

    def _counts(self, grid) -> tuple[int, ...]:
        if len(self.num_knots) == 1:
            return self.num_knots * grid.ndim
        if len(self.num_knots) != grid.ndim:
            raise ValueError(f"Expected one knot count per axis {grid.axes} (or one for all), got "
                             f"num_knots={self.num_knots}.")
        return self.num_knots

    def component_names(self, grid):
        return tuple("knot_" + "_".join(map(str, j)) for j in itertools.product(*map(range, self._counts(grid))))

    def bounds(self, grid, value_range):
        lo, hi = _value_range(value_range)
        return np.tile([lo, hi], (self.num_params(grid), 1)).astype(np.float64)

    def weights(self, grid: GridSpec) -> np.ndarray:
        """Interpolation weights ``(*resolution, num_params)``: ``field = weights @ theta``."""
        per_axis = [_hat_weights(n, m, size, grid.boundary == "periodic")
                    for n, m, size in zip(grid.resolution, self._counts(grid), grid.domain_size)]
        w = per_axis[0]
        for nxt in per_axis[1:]:  # outer product over axes, knots flattened in C order
            w = np.einsum("...i,nj->...nij", w, nxt).reshape(w.shape[:-1] + nxt.shape[:1] + (-1,))
        return w

    def _evaluate(self, theta, dim, grid):
        names = ",".join(self.component_names(grid))
        w = math.tensor(self.weights(grid), grid.spatial_shape & math.channel(**{dim: names}))
        return math.sum(w * theta, dim)

    def _evaluate_numpy(self, theta, grid):
        return self.weights(grid) @ theta

    def to_dict(self):
        counts = self.num_knots[0] if len(self.num_knots) == 1 else list(self.num_knots)
        return {"type": self.type_name, "num_knots": counts}


def _hat_weights(n: int, m: int, size: float, periodic: bool) -> np.ndarray:
    """``(n, m)``: linear interpolation weights of ``m`` knots at ``n`` cell centres."""
    x = (np.arange(n) + 0.5) * size / n
    spacing = size / m if periodic else size / (m - 1)
    pos = x / spacing
    left = np.floor(pos).astype(int)
    frac = pos - left
    w = np.zeros((n, m))
    right = (left + 1) % m if periodic else np.minimum(left + 1, m - 1)
    left = left % m if periodic else np.minimum(left, m - 1)
    np.add.at(w, (np.arange(n), left), 1 - frac)
    np.add.at(w, (np.arange(n), right), frac)
    return w


# ---------------------------------------------------------------------------- plain data
_TYPES = {cls.type_name: cls for cls in (GaussianBumps, FourierModes, PiecewiseLinear)}


def parametrization_from_dict(data: Mapping) -> AbstractParametricField:
    """The parametrisation a :meth:`~AbstractParametricField.to_dict` describes (no evaluation of strings).

    Raises:
        ValueError: not a mapping, an unknown ``type``, or unknown / invalid arguments.
    """
    if not isinstance(data, Mapping) or data.get("type") not in _TYPES:
        got = data.get("type") if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"Expected a parametrisation as {{'type': one of {sorted(_TYPES)}, ...}}, got {got!r}. "
                         "Fix: e.g. {'type': 'GaussianBumps', 'num_bumps': 2}.")
    cls = _TYPES[data["type"]]
    args = {k: v for k, v in data.items() if k != "type"}
    allowed = {"GaussianBumps": ("num_bumps", "base"), "FourierModes": ("num_modes", "log"),
               "PiecewiseLinear": ("num_knots",)}[cls.type_name]
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown key(s) {unknown} for {cls.type_name}; expected some of {list(allowed)}.")
    first = allowed[0]
    if first not in args:
        raise ValueError(f"{cls.type_name} needs {first!r}, got keys {sorted(args)}.")
    return cls(args.pop(first), **args)


def _value_range(value_range) -> tuple[float, float]:
    lo, hi = (float(v) for v in value_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"Expected a coefficient range (low, high) with low < high, got {value_range!r}.")
    return lo, hi
