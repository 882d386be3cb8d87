"""Named learnable parameters: the initial guess of a PDE coefficient that a trainer optimises.

The original design note writes ``math.tensor(0.01, name="viscosity")``; phiml has no such call. The real spelling
is ``learnable("viscosity", 0.01)``, which returns a :class:`LearnableParam` carrying the name,
the initial value, the kind (scalar / field / vector / parametric) and optional bounds.

A *parametric* learnable is a field coefficient given by a few numbers (see
:mod:`hybridkit.physics._parametric`)::

    learnable("diffusivity", theta0, parametrization=GaussianBumps(2))

Its optimised numbers are ``theta`` (shape ``(num_params,)``, bounded per component); the model's
step takes the field. What a trainer calls, for every kind alike:

* ``p = p.resolve(model)`` once (kind, bounds, checks);
* ``lo, hi = p.lower_upper()``: per-number bounds, arrays of ``p.value``'s shape;
* ``z = p.numbers(model, array)``: numbers as the phiml tensor the optimiser moves (0-d, spatial,
  ``vector`` or ``param`` channel);
* ``p.coefficient(model, z)``: what the model's step takes, differentiable in ``z`` (the field of a
  parametric learnable, ``z`` itself for the other kinds); ``p.tensor(model, array)`` is both in one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import torch
from phi.field import Field
from phiml import math

from .._backend import as_physics_tensor
from ._base import AbstractPDE
from ._parametric import AbstractParametricField

__all__ = ["LearnableParam", "learnable", "as_learnables"]

KINDS = ("scalar", "field", "vector", "parametric")


@dataclass(frozen=True, eq=False)
class LearnableParam:
    """The initial guess of one learnable PDE coefficient.

    Attributes:
        name: the model's parameter name, e.g. ``"viscosity"`` (see ``model.param_names``).
        value: initial guess: a float, or an array ``resolution`` (field) or ``(ndim,)`` (vector);
            for a parametric learnable the numbers ``theta`` ``(num_params,)``, in the order of
            ``parametrization.component_names(grid)``.
        kind: ``"scalar"``, ``"field"``, ``"vector"`` or ``"parametric"``; None: from ``value``'s
            shape, and for a float from the model's :class:`ParamSpec` (a float on a field
            parameter is a uniform initial field); ``"parametric"`` whenever ``parametrization`` is set.
        bounds: ``(low, high)`` the optimiser stays inside; None: the model's valid range
            (``ParamSpec.bounds``). Must lie inside that range. Parametric: ``(low, high)`` is the
            range of the coefficient's values, from which each component's bounds follow
            (``parametrization.bounds``), or pass ``(num_params, 2)`` bounds per component;
            resolved, it holds the per-component pairs.
        transform: how the optimiser sees the value: ``"log"`` (positive ranges: it moves in
            ``log value``), ``"linear"``, or ``"auto"`` (log when ``low > 0``). Both are squashed
            into ``bounds`` so no step can leave them. Parametric: always linear per component.
        parametrization: a :class:`~hybridkit.physics.AbstractParametricField` (e.g.
            ``GaussianBumps(2)``) making a field of ``theta``; None for the other kinds.
    """

    name: str
    value: object
    kind: str | None = None
    bounds: tuple | None = None
    transform: str = "auto"
    parametrization: AbstractParametricField | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Expected a parameter name (str), got {self.name!r}.")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"Expected kind in {KINDS} or None, got {self.kind!r}.")
        if self.transform not in ("auto", "log", "linear"):
            raise ValueError(f"Expected transform 'auto', 'log' or 'linear', got {self.transform!r}.")
        if self.parametrization is not None or self.kind == "parametric":
            self._init_parametric()
            return
        if self.bounds is not None:
            lo, hi = _pair(self.bounds, self.name)
            object.__setattr__(self, "bounds", (lo, hi))
        object.__setattr__(self, "value", _as_numpy(self.value))

    def _init_parametric(self):
        par = self.parametrization
        if not isinstance(par, AbstractParametricField):
            raise ValueError(
                f"Expected parametrization= a GaussianBumps / FourierModes / PiecewiseLinear (an "
                f"AbstractParametricField) for {self.name!r}, got {par!r}.")
        if self.kind not in (None, "parametric"):
            raise ValueError(f"A learnable with a parametrization is of kind 'parametric', got kind={self.kind!r}.")
        if self.transform == "log":
            raise ValueError(f"transform='log' is not available for the parametric {self.name!r}: its numbers "
                             "(centres, Fourier coefficients) are bounded linearly, per component.")
        if self.value is None:
            raise ValueError(f"Expected initial numbers theta for {self.name!r} ({par!r}), got None. Fix: "
                             "learnable(name, theta0, parametrization=...), theta0 ordered as "
                             "parametrization.component_names(model.grid).")
        if self.bounds is not None:
            b = np.asarray(self.bounds, dtype=np.float64)
            if b.shape == (2,):
                b = np.asarray(_pair(b, self.name))
            elif b.ndim != 2 or b.shape[1] != 2 or not np.all(b[:, 0] < b[:, 1]):
                raise ValueError(
                    f"Expected bounds of the parametric {self.name!r} as (low, high) of the coefficient's "
                    f"values or as (num_params, 2) pairs with low < high, got {self.bounds!r}.")
            object.__setattr__(self, "bounds", tuple(map(tuple, b.tolist())) if b.ndim == 2 else tuple(b))
        object.__setattr__(self, "kind", "parametric")
        object.__setattr__(self, "value", _as_numpy(self.value).reshape(-1))

    def resolve(self, model: AbstractPDE) -> "LearnableParam":
        """A copy with kind, bounds, transform and a value of the right shape, checked against ``model``.

        Raises:
            KeyError: ``name`` is not one of the model's parameters.
            ValueError: wrong shape, bounds outside the model's range, value outside the bounds.
        """
        spec = model.spec(self.name)  # KeyError names the model's parameters
        if self.kind == "parametric":
            return self._resolve_parametric(model, spec)
        grid = model.grid
        value = self.value
        kind = self.kind or _kind_of(value, spec.kind, grid)
        shape = {"scalar": (), "field": tuple(grid.resolution), "vector": (grid.ndim,)}[kind]
        if value.shape == () and shape != ():
            value = np.full(shape, float(value))
        if value.shape != shape:
            raise ValueError(
                f"Expected the initial value of {self.name!r} ({kind}) with shape {shape}, got "
                f"{value.shape}. Fix: pass a float, or an array of the grid's resolution for a field."
            )
        bounds = self._within_spec(self.bounds, spec)
        if np.any(value < bounds[0]) or np.any(value > bounds[1]) or not np.all(np.isfinite(value)):
            raise ValueError(
                f"Expected the initial value of {self.name!r} inside its bounds {bounds}, got values "
                f"in [{np.min(value):.4g}, {np.max(value):.4g}]. Fix: change the initial guess or the bounds."
            )
        transform = self.transform
        if transform == "auto":
            transform = "log" if bounds[0] > 0 else "linear"
        if transform == "log" and bounds[0] <= 0:
            raise ValueError(f"transform='log' needs positive bounds, got {bounds} for {self.name!r}.")
        return replace(self, value=value, kind=kind, bounds=bounds, transform=transform)

    def _within_spec(self, bounds, spec) -> tuple[float, float]:
        lo, hi = spec.bounds
        bounds = bounds or (float(lo), float(hi))
        if bounds[0] < lo or bounds[1] > hi:
            raise ValueError(
                f"Expected bounds of {self.name!r} inside the model's valid range {spec.bounds}, "
                f"got {bounds}. Fix: narrow the bounds (the model is not valid outside its range)."
            )
        return bounds

    def _resolve_parametric(self, model: AbstractPDE, spec) -> "LearnableParam":
        par, grid = self.parametrization, model.grid
        if spec.kind == "vector":
            raise ValueError(f"{self.name!r} of {type(model).__name__} is a vector (one number per axis), "
                             f"not a field: a parametrization ({par!r}) does not apply.")
        theta = par.check_theta(self.value, grid)
        names = par.component_names(grid)
        b = None if self.bounds is None else np.asarray(self.bounds, dtype=np.float64)
        if b is None or b.shape == (2,):
            rng = self._within_spec(None if b is None else (float(b[0]), float(b[1])), spec)
            b = par.bounds(grid, rng)
        if b.shape != (len(names), 2):
            raise ValueError(f"Expected {len(names)} bounds (low, high) for {names} of {self.name!r}, "
                             f"got {b.shape[0]}.")
        outside = [f"{n}={v:.4g} not in [{lo:.4g}, {hi:.4g}]" for n, v, (lo, hi) in zip(names, theta, b)
                   if not lo <= v <= hi]
        if outside:
            raise ValueError(f"Expected the initial numbers of {self.name!r} ({par!r}) inside their bounds, got "
                             f"{'; '.join(outside)}. Fix: change the initial guess or the bounds.")
        spec.check_values(par.evaluate_numpy(theta, grid), f"made by {par!r} from the initial numbers")
        return replace(self, value=theta, bounds=tuple(map(tuple, b.tolist())), transform="linear")

    def lower_upper(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of every optimised number: ``(low, high)`` arrays of ``value``'s shape (resolved only).

        Raises:
            ValueError: on a learnable that has not been :meth:`resolve`-d.
        """
        if self.bounds is None or self.kind is None:
            raise ValueError(f"{self!r} is not resolved. Fix: p = p.resolve(model) first.")
        if self.kind == "parametric":
            b = np.asarray(self.bounds, dtype=np.float64)
            return b[:, 0].copy(), b[:, 1].copy()
        lo, hi = self.bounds
        return np.full(self.value.shape, float(lo)), np.full(self.value.shape, float(hi))

    def numbers(self, model: AbstractPDE, value=None) -> math.Tensor:
        """The optimised numbers (default: the initial ones) as a phiml tensor: 0-d (scalar), spatial
        (field), channel ``vector`` (vector) or channel ``param`` with one item per component (parametric)."""
        v = self.value if value is None else _as_numpy(value)
        if self.kind == "parametric":
            names = ",".join(self.parametrization.component_names(model.grid))
            t = as_physics_tensor(np.asarray(v, dtype=np.float32).reshape(-1))
            return math.tensor(t, math.channel(param=names))
        t = as_physics_tensor(np.asarray(v, dtype=np.float32))
        kind = self.kind or _kind_of(v, model.spec(self.name).kind, model.grid)
        if kind == "field":
            return math.tensor(t, model.grid.spatial_shape)
        if kind == "vector":
            return math.tensor(t, math.channel(vector=",".join(model.grid.axes)))
        return math.tensor(t)

    def coefficient(self, model: AbstractPDE, numbers: math.Tensor) -> math.Tensor:
        """What the model's step takes, from the optimised ``numbers`` (a phiml tensor as :meth:`numbers`
        gives, possibly traced): the field ``parametrization.evaluate(numbers, grid)`` of a
        parametric learnable, ``numbers`` itself for the other kinds. Differentiable."""
        if self.kind == "parametric":
            return self.parametrization.evaluate(numbers, model.grid)
        return numbers

    def tensor(self, model: AbstractPDE, value=None) -> math.Tensor:
        """``value`` (default: the initial one) as the phiml tensor the model's step takes:
        ``coefficient(model, numbers(model, value))`` (for a parametric learnable: the field)."""
        return self.coefficient(model, self.numbers(model, value))

    def __repr__(self) -> str:
        v = f"{float(self.value):g}" if self.value.shape == () else f"array{self.value.shape}"
        if self.kind == "parametric":
            return f"learnable({self.name!r}, {v}, parametrization={self.parametrization!r})"
        return f"learnable({self.name!r}, {v}, kind={self.kind!r}, bounds={self.bounds})"


def learnable(name: str, value, *, kind: str | None = None, bounds: tuple | None = None,
              transform: str = "auto", parametrization: AbstractParametricField | None = None) -> LearnableParam:
    """Create a named learnable parameter (the real spelling of the original design note's ``math.tensor(v, name=...)``).

    Example::

        learnable_params = [learnable("viscosity", 0.01)]          # scalar initial guess
        learnable_params = [learnable("diffusivity", 0.3, kind="field")]  # uniform initial field
        learnable_params = [learnable("diffusivity", [0.1, 1.0, 30.0, 5.0, 0.5, 70.0, 8.0],
                                      parametrization=GaussianBumps(2))]  # base + two bumps, 1D

    Args:
        name: the model's parameter name.
        value: initial guess: float, or array ``resolution`` (field) / ``(ndim,)`` (vector); numpy,
            torch, a phiml tensor or a ``Field`` all work. With ``parametrization``: the numbers
            ``theta`` in the order of ``parametrization.component_names(grid)``.
        kind, bounds, transform, parametrization: see :class:`LearnableParam`.
    """
    return LearnableParam(name, value, kind=kind, bounds=bounds, transform=transform,
                          parametrization=parametrization)


def as_learnables(params, model: AbstractPDE) -> list[LearnableParam]:
    """Normalise what a trainer is given into resolved :class:`LearnableParam` objects.

    Accepted: a list of :class:`LearnableParam`; a dict ``name -> value``; a list of
    ``(name, value)`` pairs; or a bare value (float / phiml tensor / array) when the model has
    exactly one parameter.

    Raises:
        ValueError: empty, duplicate names, or an unnamed value on a model with several parameters.
    """
    if isinstance(params, LearnableParam) or _is_pair(params):
        params = [params]
    if isinstance(params, Mapping):
        items = [learnable(k, v) for k, v in params.items()]
    elif isinstance(params, (list, tuple)):
        items = [_one(p, model) for p in params]
    else:
        items = [_one(params, model)]
    if not items:
        raise ValueError("Expected at least one learnable parameter, got none. "
                         f"Fix: e.g. [learnable({model.param_names[0]!r}, 0.1)].")
    names = [p.name for p in items]
    if len(set(names)) != len(names):
        raise ValueError(f"Expected distinct parameter names, got {names}.")
    return [p.resolve(model) for p in items]


def _one(p, model: AbstractPDE) -> LearnableParam:
    if isinstance(p, LearnableParam):
        return p
    if _is_pair(p):
        return learnable(p[0], p[1])
    if len(model.param_names) == 1:  # unambiguous: the model has a single parameter
        return learnable(model.param_names[0], p)
    raise ValueError(
        f"Cannot tell which parameter the value {p!r} is: {type(model).__name__} has "
        f"{list(model.param_names)}. Fix: pass learnable(name, value) or a dict name -> value."
    )


def _is_pair(p) -> bool:
    return isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)


def _kind_of(value: np.ndarray, spec_kind: str, grid) -> str:
    if value.shape == ():
        return spec_kind
    if value.shape == tuple(grid.resolution):
        return "field"
    if value.shape == (grid.ndim,):
        return "vector"
    raise ValueError(
        f"Cannot tell the kind of a value of shape {value.shape} on a grid {grid.resolution}: "
        f"expected (), {tuple(grid.resolution)} (field) or ({grid.ndim},) (vector)."
    )


def _pair(bounds, name: str) -> tuple[float, float]:
    lo, hi = (float(b) for b in bounds)
    if not lo < hi:
        raise ValueError(f"Expected bounds (low, high) with low < high, got {tuple(bounds)} for {name!r}.")
    return lo, hi


def _as_numpy(value) -> np.ndarray:
    if isinstance(value, Field):
        value = value.values
    if isinstance(value, math.Tensor):
        # spatial dims in axis order (x, y, z), then the vector dim
        order = sorted(value.shape.spatial.names) + list(value.shape.channel.names)
        value = value.numpy(order) if value.shape.rank else float(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64)
